use super::events::{filter_log_events, get_log_events, put_log_events};
use super::groups::*;
use super::state::Logs;
use super::streams::*;
use crate::services::{Ctx, Deps};
use crate::store::Store;
use serde_json::{json, Value};

fn logs() -> Logs {
    Logs::open(&Deps::for_tests().store)
}

fn now_ms(ctx: &Ctx) -> i64 {
    (ctx.now * 1000.0) as i64
}

fn setup(logs: &Logs, ctx: &Ctx, group: &str, streams: &[&str]) {
    create_log_group(logs, ctx, json!({"logGroupName": group})).expect("group");
    for s in streams {
        create_log_stream(
            logs,
            ctx,
            json!({"logGroupName": group, "logStreamName": s}),
        )
        .expect("stream");
    }
}

fn put(logs: &Logs, ctx: &Ctx, group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
    let ev: Vec<Value> = events
        .iter()
        .map(|(t, m)| json!({"timestamp": t, "message": m}))
        .collect();
    put_log_events(logs, ctx, json!({"logGroupName": group, "logStreamName": stream, "logEvents": ev, "sequenceToken": "ignored"}))
        .expect("put")
}

fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn groups_create_describe_delete_retention_and_tags() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    create_log_group(&logs, &ctx, json!({"logGroupName": "/ecs/web", "tags": {"team": "a"}, "logGroupClass": "INFREQUENT_ACCESS"})).expect("create");
    let e = create_log_group(&logs, &ctx, json!({"logGroupName": "/ecs/web"})).expect_err("dup");
    assert_eq!(e.code, "ResourceAlreadyExistsException");
    for i in 0..3 {
        create_log_group(&logs, &ctx, json!({"logGroupName": format!("/app/{i}")}))
            .expect("create");
    }
    let d =
        describe_log_groups(&logs, &ctx, json!({"logGroupNamePrefix": "/ecs"})).expect("describe");
    let g = &d["logGroups"][0];
    assert_eq!(g["logGroupName"], "/ecs/web");
    assert_eq!(
        g["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*"
    );
    assert_eq!(
        g["logGroupArn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web"
    );
    assert_eq!(g["creationTime"], json!(now_ms(&ctx)));
    assert_eq!(g["storedBytes"], json!(0));
    assert_eq!(g["logGroupClass"], "INFREQUENT_ACCESS");
    assert!(g.get("retentionInDays").is_none());
    // Paging with limit.
    let p1 = describe_log_groups(&logs, &ctx, json!({"limit": 3})).expect("p1");
    assert_eq!(p1["logGroups"].as_array().expect("g").len(), 3);
    let p2 = describe_log_groups(
        &logs,
        &ctx,
        json!({"limit": 3, "nextToken": p1["nextToken"]}),
    )
    .expect("p2");
    assert_eq!(p2["logGroups"].as_array().expect("g").len(), 1);
    assert_eq!(p2["logGroups"][0]["logGroupName"], "/ecs/web");
    assert!(p2.get("nextToken").is_none());
    let pat =
        describe_log_groups(&logs, &ctx, json!({"logGroupNamePattern": "APP"})).expect("pattern");
    assert_eq!(pat["logGroups"].as_array().expect("g").len(), 3);
    assert_eq!(
        describe_log_groups(
            &logs,
            &ctx,
            json!({"logGroupNamePattern": "a", "logGroupNamePrefix": "/"})
        )
        .expect_err("both")
        .code,
        "InvalidParameterException"
    );

    put_retention_policy(
        &logs,
        &ctx,
        json!({"logGroupName": "/ecs/web", "retentionInDays": 7}),
    )
    .expect("retention");
    let e = put_retention_policy(
        &logs,
        &ctx,
        json!({"logGroupName": "/ecs/web", "retentionInDays": 2}),
    )
    .expect_err("bad days");
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e
        .message
        .contains("Member must satisfy enum value set: [1, 3, 5, 7, 14"));
    let d =
        describe_log_groups(&logs, &ctx, json!({"logGroupNamePrefix": "/ecs"})).expect("describe");
    assert_eq!(d["logGroups"][0]["retentionInDays"], json!(7));
    delete_retention_policy(&logs, &ctx, json!({"logGroupName": "/ecs/web"}))
        .expect("delete retention");
    let d =
        describe_log_groups(&logs, &ctx, json!({"logGroupNamePrefix": "/ecs"})).expect("describe");
    assert!(d["logGroups"][0].get("retentionInDays").is_none());

    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web";
    tag_resource(
        &logs,
        &ctx,
        json!({"resourceArn": arn, "tags": {"env": "prod"}}),
    )
    .expect("tag");
    untag_resource(
        &logs,
        &ctx,
        json!({"resourceArn": arn, "tagKeys": ["team"]}),
    )
    .expect("untag");
    assert_eq!(
        list_tags_for_resource(&logs, &ctx, json!({"resourceArn": format!("{arn}:*")}))
            .expect("list")["tags"],
        json!({"env": "prod"})
    );
    tag_log_group(
        &logs,
        &ctx,
        json!({"logGroupName": "/ecs/web", "tags": {"a": "1"}}),
    )
    .expect("tag");
    untag_log_group(
        &logs,
        &ctx,
        json!({"logGroupName": "/ecs/web", "tags": ["env"]}),
    )
    .expect("untag");
    assert_eq!(
        list_tags_log_group(&logs, &ctx, json!({"logGroupName": "/ecs/web"})).expect("list")
            ["tags"],
        json!({"a": "1"})
    );
    let e = list_tags_for_resource(
        &logs,
        &ctx,
        json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:nope"}),
    )
    .expect_err("missing");
    assert_eq!(e.code, "ResourceNotFoundException");

    delete_log_group(&logs, &ctx, json!({"logGroupName": "/ecs/web"})).expect("delete");
    let e = delete_log_group(&logs, &ctx, json!({"logGroupName": "/ecs/web"})).expect_err("gone");
    assert_eq!(e.code, "ResourceNotFoundException");
    assert_eq!(e.message, "The specified log group does not exist.");
}

#[test]
fn streams_describe_order_and_paging() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    setup(&logs, &ctx, "g", &["b", "a", "c"]);
    let e = create_log_stream(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .expect_err("dup");
    assert_eq!(e.code, "ResourceAlreadyExistsException");
    let e = create_log_stream(
        &logs,
        &ctx,
        json!({"logGroupName": "nope", "logStreamName": "a"}),
    )
    .expect_err("no group");
    assert_eq!(e.code, "ResourceNotFoundException");
    let t = now_ms(&ctx);
    put(&logs, &ctx, "g", "a", &[(t - 3000, "x")]);
    put(&logs, &ctx, "g", "c", &[(t - 1000, "y")]);
    put(&logs, &ctx, "g", "b", &[(t - 2000, "z"), (t - 1500, "zz")]);
    let names = |v: &Value| -> Vec<String> {
        v["logStreams"]
            .as_array()
            .expect("s")
            .iter()
            .map(|s| s["logStreamName"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let d = describe_log_streams(&logs, &ctx, json!({"logGroupName": "g"})).expect("d");
    assert_eq!(names(&d), vec!["a", "b", "c"]);
    let b = &d["logStreams"][1];
    assert_eq!(b["firstEventTimestamp"], json!(t - 2000));
    assert_eq!(b["lastEventTimestamp"], json!(t - 1500));
    assert_eq!(b["lastIngestionTime"], json!(t));
    assert!(b["uploadSequenceToken"].is_string());
    assert_eq!(
        b["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:b"
    );
    let d = describe_log_streams(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "limit": 2}),
    )
    .expect("d");
    assert_eq!(names(&d), vec!["c", "b"]);
    let d2 = describe_log_streams(&logs, &ctx, json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true, "limit": 2, "nextToken": d["nextToken"]})).expect("d2");
    assert_eq!(names(&d2), vec!["a"]);
    let d = describe_log_streams(&logs, &ctx, json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:000000000000:log-group:g", "logStreamNamePrefix": "c"})).expect("d");
    assert_eq!(names(&d), vec!["c"]);
    let e = describe_log_streams(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "a"}),
    )
    .expect_err("combo");
    assert_eq!(e.code, "InvalidParameterException");
    delete_log_stream(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .expect("delete");
    let e = delete_log_stream(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .expect_err("gone");
    assert_eq!(e.message, "The specified log stream does not exist.");
    // Group stored bytes: the remaining events (message bytes + 26 each).
    let g = describe_log_groups(&logs, &ctx, json!({})).expect("g");
    assert_eq!(g["logGroups"][0]["storedBytes"], json!(1 + 1 + 2 + 3 * 26));
}

#[test]
fn put_log_events_validates_and_rejects_like_aws() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    setup(&logs, &ctx, "g", &["s"]);
    let t = now_ms(&ctx);
    let e = put_log_events(&logs, &ctx, json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}]})).expect_err("order");
    assert_eq!(e.code, "InvalidParameterException");
    assert_eq!(
        e.message,
        "Log events in a single PutLogEvents request must be in chronological order."
    );
    let e = put_log_events(&logs, &ctx, json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": t, "message": "a"}]})).expect_err("stream");
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = put_log_events(&logs, &ctx, json!({"logGroupName": "nope", "logStreamName": "s", "logEvents": [{"timestamp": t, "message": "a"}]})).expect_err("group");
    assert_eq!(e.message, "The specified log group does not exist.");
    let day = 86_400_000;
    let old = t - 14 * day - 3_600_000;
    let out = put(
        &logs,
        &ctx,
        "g",
        "s",
        &[
            (old, "old1"),
            (old + 1000, "old2"),
            (t - 14 * day + 3_600_000, "ok"),
        ],
    );
    assert_eq!(
        out["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 2})
    );
    let out = put(
        &logs,
        &ctx,
        "g",
        "s",
        &[(t, "ok2"), (t + 3 * 3_600_000, "new")],
    );
    assert_eq!(
        out["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 1})
    );
    assert!(out["nextSequenceToken"].is_string());
    let all = get_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
    )
    .expect("get");
    assert_eq!(messages(&all), vec!["ok", "ok2"]);
    // Retention: events older than the group's retention are expired.
    put_retention_policy(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "retentionInDays": 1}),
    )
    .expect("ret");
    let out = put(
        &logs,
        &ctx,
        "g",
        "s",
        &[(t - day - 60_000, "expired"), (t - 7_200_000, "ok3")],
    );
    assert_eq!(
        out["rejectedLogEventsInfo"],
        json!({"expiredLogEventEndIndex": 1})
    );
}

#[test]
fn get_log_events_pages_forward_and_backward_with_stable_tokens() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    setup(&logs, &ctx, "g", &["s"]);
    let t = now_ms(&ctx) - 100_000;
    // Two batches; the second holds earlier events (allowed across requests).
    put(
        &logs,
        &ctx,
        "g",
        "s",
        &[(t + 50, "e5"), (t + 60, "e6"), (t + 70, "e7")],
    );
    put(
        &logs,
        &ctx,
        "g",
        "s",
        &[
            (t + 10, "e1"),
            (t + 20, "e2"),
            (t + 30, "e3"),
            (t + 40, "e4"),
        ],
    );
    let q = |extra: Value| {
        let mut v = json!({"logGroupName": "g", "logStreamName": "s", "limit": 3});
        for (k, x) in extra.as_object().expect("obj") {
            v[k] = x.clone();
        }
        get_log_events(&logs, &ctx, v).expect("get")
    };
    // Default: the most recent events.
    let tail = q(json!({}));
    assert_eq!(messages(&tail), vec!["e5", "e6", "e7"]);
    let back = q(json!({"nextToken": tail["nextBackwardToken"]}));
    assert_eq!(messages(&back), vec!["e2", "e3", "e4"]);
    let back2 = q(json!({"nextToken": back["nextBackwardToken"]}));
    assert_eq!(messages(&back2), vec!["e1"]);
    let back3 = q(json!({"nextToken": back2["nextBackwardToken"]}));
    assert_eq!(messages(&back3), Vec::<String>::new());
    assert_eq!(back3["nextBackwardToken"], back2["nextBackwardToken"]);
    // From the head, forward, to the end: the same token repeats.
    let h1 = q(json!({"startFromHead": true}));
    assert_eq!(messages(&h1), vec!["e1", "e2", "e3"]);
    assert!(h1["nextForwardToken"]
        .as_str()
        .expect("f")
        .starts_with("f/"));
    assert!(h1["nextBackwardToken"]
        .as_str()
        .expect("b")
        .starts_with("b/"));
    let h2 = q(json!({"nextToken": h1["nextForwardToken"]}));
    assert_eq!(messages(&h2), vec!["e4", "e5", "e6"]);
    let h3 = q(json!({"nextToken": h2["nextForwardToken"]}));
    assert_eq!(messages(&h3), vec!["e7"]);
    let h4 = q(json!({"nextToken": h3["nextForwardToken"]}));
    assert!(messages(&h4).is_empty());
    assert_eq!(h4["nextForwardToken"], h3["nextForwardToken"]);
    // New events show up on the next forward read.
    put(&logs, &ctx, "g", "s", &[(t + 80, "e8")]);
    let h5 = q(json!({"nextToken": h4["nextForwardToken"]}));
    assert_eq!(messages(&h5), vec!["e8"]);
    // Backward from a forward page.
    let b = q(json!({"nextToken": h2["nextBackwardToken"]}));
    assert_eq!(messages(&b), vec!["e1", "e2", "e3"]);
    // Time window: [start, end).
    let w = q(json!({"startTime": t + 20, "endTime": t + 40, "startFromHead": true}));
    assert_eq!(messages(&w), vec!["e2", "e3"]);
    assert_eq!(w["events"][0]["timestamp"], json!(t + 20));
    assert_eq!(w["events"][0]["ingestionTime"], json!(now_ms(&ctx)));
    let e = get_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "x/1"}),
    )
    .expect_err("token");
    assert_eq!(e.code, "InvalidParameterException");
}

#[test]
fn filter_log_events_interleaves_filters_and_pages() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    setup(&logs, &ctx, "g", &["web/1", "web/2", "db"]);
    let t = now_ms(&ctx) - 100_000;
    put(
        &logs,
        &ctx,
        "g",
        "web/1",
        &[(t + 1, "GET / 200"), (t + 4, "GET /x 500 ERROR")],
    );
    put(
        &logs,
        &ctx,
        "g",
        "web/2",
        &[
            (t + 2, "GET /y 200"),
            (t + 3, r#"{"level":"error","ms":12}"#),
        ],
    );
    put(&logs, &ctx, "g", "db", &[(t + 5, "ERROR deadlock")]);
    let f = |extra: Value| {
        let mut v = json!({"logGroupName": "g"});
        for (k, x) in extra.as_object().expect("obj") {
            v[k] = x.clone();
        }
        filter_log_events(&logs, &ctx, v).expect("filter")
    };
    let all = f(json!({}));
    assert_eq!(
        messages(&all),
        vec![
            "GET / 200",
            "GET /y 200",
            r#"{"level":"error","ms":12}"#,
            "GET /x 500 ERROR",
            "ERROR deadlock"
        ]
    );
    assert_eq!(all["events"][1]["logStreamName"], "web/2");
    assert_eq!(all["searchedLogStreams"].as_array().expect("s").len(), 3);
    assert!(all.get("nextToken").is_none());
    assert_eq!(
        messages(&f(json!({"filterPattern": "ERROR"}))),
        vec!["GET /x 500 ERROR", "ERROR deadlock"]
    );
    assert_eq!(
        messages(&f(
            json!({"filterPattern": "ERROR", "logStreamNamePrefix": "web"})
        )),
        vec!["GET /x 500 ERROR"]
    );
    assert_eq!(
        messages(&f(
            json!({"filterPattern": "?deadlock ?200", "logStreamNames": ["db", "web/2"]})
        )),
        vec!["GET /y 200", "ERROR deadlock"]
    );
    assert_eq!(
        messages(&f(
            json!({"filterPattern": "{ $.level = \"error\" && $.ms > 10 }"})
        )),
        vec![r#"{"level":"error","ms":12}"#]
    );
    assert_eq!(
        messages(&f(json!({"filterPattern": "\"GET /x\""}))),
        vec!["GET /x 500 ERROR"]
    );
    // endTime is inclusive here.
    assert_eq!(
        messages(&f(json!({"startTime": t + 2, "endTime": t + 3}))).len(),
        2
    );
    // Paging.
    let p1 = f(json!({"limit": 2}));
    assert_eq!(messages(&p1), vec!["GET / 200", "GET /y 200"]);
    let p2 = f(json!({"limit": 2, "nextToken": p1["nextToken"]}));
    assert_eq!(messages(&p2).len(), 2);
    let p3 = f(json!({"limit": 2, "nextToken": p2["nextToken"]}));
    assert_eq!(messages(&p3), vec!["ERROR deadlock"]);
    assert!(p3.get("nextToken").is_none());
    let ids: std::collections::HashSet<&str> = all["events"]
        .as_array()
        .expect("e")
        .iter()
        .filter_map(|e| e["eventId"].as_str())
        .collect();
    assert_eq!(ids.len(), 5);
    let e = filter_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamNames": ["db"], "logStreamNamePrefix": "w"}),
    )
    .expect_err("both");
    assert_eq!(e.code, "InvalidParameterException");
    let e = filter_log_events(&logs, &ctx, json!({"logGroupName": "nope"})).expect_err("group");
    assert_eq!(e.code, "ResourceNotFoundException");
}

#[test]
fn driver_handle_and_bounds() {
    let logs = logs();
    let ctx = Ctx::for_tests();
    let t = now_ms(&ctx);
    let e = logs
        .ensure_stream(
            &ctx.account,
            &ctx.region,
            t,
            "/ecs/app",
            "ecs/web/abc",
            false,
        )
        .expect_err("no group");
    assert_eq!(e.code, "ResourceNotFoundException");
    logs.ensure_stream(
        &ctx.account,
        &ctx.region,
        t,
        "/ecs/app",
        "ecs/web/abc",
        true,
    )
    .expect("ensure");
    logs.ensure_stream(
        &ctx.account,
        &ctx.region,
        t,
        "/ecs/app",
        "ecs/web/abc",
        true,
    )
    .expect("again");
    // Many batches: the stream stays bounded, oldest batches dropped.
    let big = "x".repeat(4000);
    for i in 0..10_000i64 {
        logs.append_events(
            &ctx.account,
            &ctx.region,
            t,
            "/ecs/app",
            "ecs/web/abc",
            vec![(t - 10_000 + i, big.clone())],
        )
        .expect("append");
    }
    let s = describe_log_streams(&logs, &ctx, json!({"logGroupName": "/ecs/app"})).expect("d");
    assert_eq!(s["logStreams"][0]["lastEventTimestamp"], json!(t - 1));
    let g = describe_log_groups(&logs, &ctx, json!({})).expect("g");
    let stored = g["logGroups"][0]["storedBytes"].as_u64().expect("bytes");
    assert!(stored <= super::state::MAX_STREAM_BYTES, "{stored}");
    let tail = get_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "/ecs/app", "logStreamName": "ecs/web/abc", "limit": 1}),
    )
    .expect("tail");
    assert_eq!(tail["events"][0]["timestamp"], json!(t - 1));
    let head = get_log_events(&logs, &ctx, json!({"logGroupName": "/ecs/app", "logStreamName": "ecs/web/abc", "limit": 1, "startFromHead": true})).expect("head");
    assert!(
        head["events"][0]["timestamp"].as_i64().expect("ts") > t - 10_000,
        "oldest dropped"
    );
}

#[test]
fn log_events_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx::for_tests();
    let t = now_ms(&ctx);
    {
        let store = Store::open(dir.path()).expect("open");
        let logs = Logs::open(&store);
        setup(&logs, &ctx, "g", &["s"]);
        put(&logs, &ctx, "g", "s", &[(t - 2, "one"), (t - 1, "two")]);
        put_retention_policy(
            &logs,
            &ctx,
            json!({"logGroupName": "g", "retentionInDays": 30}),
        )
        .expect("ret");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let logs = Logs::open(&store);
    let out = get_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
    )
    .expect("get");
    assert_eq!(messages(&out), vec!["one", "two"]);
    let g = describe_log_groups(&logs, &ctx, json!({})).expect("g");
    assert_eq!(g["logGroups"][0]["retentionInDays"], json!(30));
    // The next batch continues the sequence (no position collides with the stored ones).
    put(&logs, &ctx, "g", "s", &[(t - 2, "three")]);
    let out = get_log_events(
        &logs,
        &ctx,
        json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
    )
    .expect("get");
    assert_eq!(messages(&out), vec!["one", "three", "two"]);
}
