use super::*;
use crate::services::cloudwatch::{Datum, StatQuery};
use crate::services::Deps;
use crate::store::Store;

fn cw() -> CloudWatch {
    CloudWatch::open(&Deps::for_tests())
}

fn ctx() -> Ctx {
    Ctx::for_tests()
}

fn put(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    put_metric_data(cw, ctx, input)
}

#[test]
fn put_then_get_metric_statistics_is_numerically_right() {
    let cw = cw();
    let ctx = ctx();
    let t0 = ctx.now - 600.0; // minute-aligned
    for (i, v) in [1.0, 2.0, 3.0, 4.0].iter().enumerate() {
        put(
            &cw,
            &ctx,
            json!({"Namespace": "App", "MetricData": [{
                "MetricName": "Latency", "Value": v, "Unit": "Milliseconds",
                "Timestamp": t0 + 60.0 * (i / 2) as f64 + 5.0,
                "Dimensions": [{"Name": "Svc", "Value": "a"}]}]}),
        )
        .expect("put");
    }
    put(
        &cw,
        &ctx,
        json!({"Namespace": "App", "MetricData": [{
            "MetricName": "Latency", "Values": [10.0, 20.0], "Counts": [3.0, 1.0],
            "Unit": "Milliseconds", "Timestamp": t0 + 130.0,
            "Dimensions": [{"Name": "Svc", "Value": "a"}]},
            {"MetricName": "Latency", "StatisticValues": {"SampleCount": 2.0, "Sum": 8.0, "Minimum": 3.0, "Maximum": 5.0},
             "Unit": "Milliseconds", "Timestamp": t0 + 190.0,
             "Dimensions": [{"Name": "Svc", "Value": "a"}]}]}),
    )
    .expect("put");
    let out = get_metric_statistics(
        &cw,
        &ctx,
        json!({"Namespace": "App", "MetricName": "Latency",
               "Dimensions": [{"Name": "Svc", "Value": "a"}],
               "StartTime": t0, "EndTime": t0 + 600.0, "Period": 60,
               "Statistics": ["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
               "ExtendedStatistics": ["p50"]}),
    )
    .expect("get");
    assert_eq!(out["Label"], "Latency");
    let mut dps = out["Datapoints"].as_array().expect("dps").clone();
    dps.sort_by(|a, b| {
        a["Timestamp"]
            .as_f64()
            .partial_cmp(&b["Timestamp"].as_f64())
            .expect("cmp")
    });
    assert_eq!(dps.len(), 4);
    assert_eq!(dps[0]["Timestamp"], json!(t0 as i64));
    assert_eq!(dps[0]["SampleCount"], json!(2.0));
    assert_eq!(dps[0]["Sum"], json!(3.0));
    assert_eq!(dps[0]["Average"], json!(1.5));
    assert_eq!(dps[0]["Unit"], "Milliseconds");
    assert_eq!(dps[1]["Maximum"], json!(4.0));
    // Values 10×3, 20×1.
    assert_eq!(dps[2]["SampleCount"], json!(4.0));
    assert_eq!(dps[2]["Sum"], json!(50.0));
    assert_eq!(dps[2]["Average"], json!(12.5));
    assert_eq!(dps[2]["ExtendedStatistics"]["p50"], json!(10.0));
    // A statistic set: no percentile.
    assert_eq!(dps[3]["Average"], json!(4.0));
    assert_eq!(dps[3]["Minimum"], json!(3.0));
    assert!(dps[3]["ExtendedStatistics"].get("p50").is_none());

    // The unit filter, and another series (other dimensions) kept apart.
    let none = get_metric_statistics(
        &cw,
        &ctx,
        json!({"Namespace": "App", "MetricName": "Latency",
               "Dimensions": [{"Name": "Svc", "Value": "a"}], "Unit": "Seconds",
               "StartTime": t0, "EndTime": t0 + 600.0, "Period": 300, "Statistics": ["Sum"]}),
    )
    .expect("get");
    assert_eq!(none["Datapoints"], json!([]));
    let all = get_metric_statistics(
        &cw,
        &ctx,
        json!({"Namespace": "App", "MetricName": "Latency",
               "Dimensions": [{"Name": "Svc", "Value": "a"}],
               "StartTime": t0, "EndTime": t0 + 600.0, "Period": 600, "Statistics": ["Sum"]}),
    )
    .expect("get");
    assert_eq!(all["Datapoints"][0]["Sum"], json!(3.0 + 7.0 + 50.0 + 8.0));
}

#[test]
fn put_metric_data_errors_match_aws() {
    let cw = cw();
    let ctx = ctx();
    let e = put(
        &cw,
        &ctx,
        json!({"Namespace": "AWS/EC2", "MetricData": [{"MetricName": "m", "Value": 1.0}]}),
    )
    .expect_err("AWS/ reserved");
    assert_eq!(e.code, "InvalidParameterValueException");
    assert_eq!(
        e.message,
        "The value AWS/EC2 for parameter Namespace is invalid."
    );
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Value": 1.0, "StatisticValues": {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0}}]}))
        .expect_err("both");
    assert_eq!(e.code, "InvalidParameterCombinationException");
    let e = put(
        &cw,
        &ctx,
        json!({"Namespace": "A", "MetricData": [{"MetricName": "m"}]}),
    )
    .expect_err("none");
    assert_eq!(e.code, "MissingRequiredParameterException");
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]}]}))
        .expect_err("sizes");
    assert_eq!(e.code, "InvalidParameterValueException");
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Value": 1.0, "Timestamp": ctx.now + 3.0 * 3600.0}]}))
        .expect_err("future");
    assert!(
        e.message.contains("two hours in the future"),
        "{}",
        e.message
    );
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Value": 1.0, "Timestamp": ctx.now - 15.0 * 86400.0}]}))
        .expect_err("past");
    assert!(e.message.contains("past two weeks"));
    let e = put(
        &cw,
        &ctx,
        json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Value": "NaN"}]}),
    )
    .expect_err("nan");
    assert_eq!(e.code, "InvalidParameterValueException");
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"MetricName": "m", "Value": 1.0}))
        .collect();
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": many})).expect_err("1001");
    assert!(e.message.contains("1000"));
    let dims: Vec<Value> = (0..31)
        .map(|i| json!({"Name": format!("d{i}"), "Value": "v"}))
        .collect();
    let e = put(&cw, &ctx, json!({"Namespace": "A", "MetricData": [{"MetricName": "m", "Value": 1.0, "Dimensions": dims}]}))
        .expect_err("31 dims");
    assert!(e.message.contains("MetricData.member.1.Dimensions"));
    // Nothing was stored by the failed calls.
    assert_eq!(
        list_metrics(&cw, &ctx, json!({})).expect("list")["Metrics"],
        json!([])
    );
}

#[test]
fn list_metrics_filters_and_pages() {
    let cw = cw();
    let ctx = ctx();
    let data: Vec<Value> = (0..600)
        .map(|i| json!({"MetricName": "Hits", "Value": 1.0,
                       "Dimensions": [{"Name": "Id", "Value": format!("{i:04}")}, {"Name": "Env", "Value": if i % 2 == 0 {"prod"} else {"dev"}}]}))
        .collect();
    put(
        &cw,
        &ctx,
        json!({"Namespace": "Web", "MetricData": data[..300]}),
    )
    .expect("put");
    put(
        &cw,
        &ctx,
        json!({"Namespace": "Web", "MetricData": data[300..]}),
    )
    .expect("put");
    put(
        &cw,
        &ctx,
        json!({"Namespace": "Other", "MetricData": [{"MetricName": "Errors", "Value": 1.0}]}),
    )
    .expect("put");

    let p1 = list_metrics(&cw, &ctx, json!({"Namespace": "Web"})).expect("list");
    assert_eq!(p1["Metrics"].as_array().expect("m").len(), 500);
    let token = p1["NextToken"].as_str().expect("token").to_string();
    let p2 =
        list_metrics(&cw, &ctx, json!({"Namespace": "Web", "NextToken": token})).expect("list");
    assert_eq!(p2["Metrics"].as_array().expect("m").len(), 100);
    assert!(p2.get("NextToken").is_none());
    // Name-only dimension filter and value filter.
    let prod = list_metrics(
        &cw,
        &ctx,
        json!({"Dimensions": [{"Name": "Env", "Value": "prod"}]}),
    )
    .expect("list");
    assert_eq!(prod["Metrics"].as_array().expect("m").len(), 300);
    let any_env = list_metrics(&cw, &ctx, json!({"Dimensions": [{"Name": "Env"}]})).expect("list");
    assert!(any_env.get("NextToken").is_some());
    let one = list_metrics(
        &cw,
        &ctx,
        json!({"MetricName": "Errors", "RecentlyActive": "PT3H"}),
    )
    .expect("list");
    assert_eq!(
        one["Metrics"],
        json!([{"Namespace": "Other", "MetricName": "Errors", "Dimensions": []}])
    );
    let mut later = ctx.clone();
    later.now += 4.0 * 3600.0;
    let recent = list_metrics(&cw, &later, json!({"RecentlyActive": "PT3H"})).expect("list");
    assert_eq!(recent["Metrics"], json!([]));
    let e = list_metrics(&cw, &ctx, json!({"NextToken": "garbage"})).expect_err("token");
    assert_eq!(e.code, "InvalidParameterValueException");
}

#[test]
fn get_metric_statistics_validates_its_window() {
    let cw = cw();
    let ctx = ctx();
    let base = json!({"Namespace": "A", "MetricName": "m", "StartTime": ctx.now - 3600.0, "EndTime": ctx.now, "Period": 60, "Statistics": ["Sum"]});
    let mut v = base.clone();
    v["Period"] = json!(7);
    assert_eq!(
        get_metric_statistics(&cw, &ctx, v)
            .expect_err("period")
            .code,
        "InvalidParameterValueException"
    );
    let mut v = base.clone();
    v["StartTime"] = json!(ctx.now);
    assert_eq!(
        get_metric_statistics(&cw, &ctx, v).expect_err("order").code,
        "InvalidParameterValueException"
    );
    let mut v = base.clone();
    v["Period"] = json!(1);
    let e = get_metric_statistics(&cw, &ctx, v).expect_err("too many");
    assert_eq!(e.code, "InvalidParameterCombinationException");
    assert!(
        e.message
            .starts_with("You have requested up to 3,600 datapoints"),
        "{}",
        e.message
    );
    let mut v = base.clone();
    v.as_object_mut().expect("obj").remove("Statistics");
    assert_eq!(
        get_metric_statistics(&cw, &ctx, v).expect_err("none").code,
        "MissingRequiredParameterException"
    );
    let mut v = base;
    v["ExtendedStatistics"] = json!(["tm99"]);
    assert!(get_metric_statistics(&cw, &ctx, v)
        .expect_err("tm")
        .message
        .contains("tm99"));
}

#[test]
fn get_metric_data_with_expressions_and_scan_order() {
    let cw = cw();
    let ctx = ctx();
    let t0 = ctx.now - 300.0;
    for i in 0..3 {
        put(
            &cw,
            &ctx,
            json!({"Namespace": "App", "MetricData": [
            {"MetricName": "Ok", "Value": 10.0 * (i + 1) as f64, "Timestamp": t0 + 60.0 * i as f64},
            {"MetricName": "Err", "Value": 1.0, "Timestamp": t0 + 60.0 * i as f64}]}),
        )
        .expect("put");
    }
    let stat = |id: &str, name: &str| json!({"Id": id, "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": name}, "Period": 60, "Stat": "Sum"}});
    let out = get_metric_data(&cw, &ctx, json!({
        "StartTime": t0, "EndTime": ctx.now,
        "MetricDataQueries": [stat("ok", "Ok"), stat("err", "Err"),
            {"Id": "rate", "Expression": "err / (ok + err) * 100", "Label": "ErrorRate"},
            {"Id": "total", "Expression": "SUM(METRICS())"},
            {"Id": "plain", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Ok"}, "Period": 60, "Stat": "Maximum"}}]})).expect("gmd");
    let r = out["MetricDataResults"].as_array().expect("results");
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["Id"], "rate");
    assert_eq!(r[0]["Label"], "ErrorRate");
    assert_eq!(r[0]["StatusCode"], "Complete");
    // TimestampDescending by default.
    assert_eq!(
        r[0]["Timestamps"],
        json!([t0 as i64 + 120, t0 as i64 + 60, t0 as i64])
    );
    let rate: Vec<f64> = r[0]["Values"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!((rate[0] - 100.0 / 31.0).abs() < 1e-9 && (rate[2] - 100.0 / 11.0).abs() < 1e-9);
    // METRICS() is every MetricStat query, "plain" (Maximum of Ok) included.
    assert_eq!(r[1]["Values"], json!([61.0, 41.0, 21.0]));
    assert_eq!(r[2]["Label"], "Ok");
    let asc = get_metric_data(
        &cw,
        &ctx,
        json!({"StartTime": t0, "EndTime": ctx.now, "ScanBy": "TimestampAscending",
        "MetricDataQueries": [stat("ok", "Ok")]}),
    )
    .expect("gmd");
    // ReturnData false: nothing returned.
    assert_eq!(asc["MetricDataResults"], json!([]));
    let mut q = stat("ok", "Ok");
    q["ReturnData"] = json!(true);
    let asc = get_metric_data(&cw, &ctx, json!({"StartTime": t0, "EndTime": ctx.now, "ScanBy": "TimestampAscending", "MetricDataQueries": [q]})).expect("gmd");
    assert_eq!(
        asc["MetricDataResults"][0]["Values"],
        json!([10.0, 20.0, 30.0])
    );
    let e = get_metric_data(
        &cw,
        &ctx,
        json!({"StartTime": t0, "EndTime": ctx.now,
        "MetricDataQueries": [{"Id": "s", "Expression": "SEARCH('{App} Ok', 'Sum', 60)"}]}),
    )
    .expect_err("search");
    assert_eq!(e.code, "InvalidParameterValueException");
    assert!(e.message.contains("SEARCH"));
    let e = get_metric_data(
        &cw,
        &ctx,
        json!({"StartTime": t0, "EndTime": ctx.now,
        "MetricDataQueries": [{"Id": "Bad", "Expression": "1"}]}),
    )
    .expect_err("id");
    assert!(e.message.contains("Id"));
}

#[test]
fn series_are_bounded_by_count_and_retention() {
    let cw = cw();
    let mut ctx = ctx();
    let start = ctx.now - 13.0 * 86400.0;
    let data: Vec<Datum> = (0..10_500)
        .map(|i| Datum {
            namespace: "AWS/ECS".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: vec![("ClusterName".into(), "c".into())],
            value: i as f64,
            unit: Some("Percent".into()),
            timestamp: start + i as f64 * 60.0,
        })
        .collect();
    cw.put_data(&ctx.account, &ctx.region, ctx.now, &data)
        .expect("put");
    let q = StatQuery {
        namespace: "AWS/ECS".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: vec![("ClusterName".into(), "c".into())],
        start: start - 60.0,
        end: ctx.now + 86400.0,
        period: 86400,
        stat: Stat::SampleCount,
    };
    let total: f64 = cw
        .statistics(&ctx.account, &ctx.region, ctx.now, &q)
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 10_000.0);
    let q_min = StatQuery {
        stat: Stat::Minimum,
        ..q.clone()
    };
    let min = cw
        .statistics(&ctx.account, &ctx.region, ctx.now, &q_min)
        .iter()
        .map(|(_, v)| *v)
        .fold(f64::INFINITY, f64::min);
    assert_eq!(min, 500.0, "the oldest points went first");
    // The "AWS/" namespace is only for internal callers, and is listed.
    let listed = list_metrics(&cw, &ctx, json!({"Namespace": "AWS/ECS"})).expect("list");
    assert_eq!(
        listed["Metrics"][0]["Dimensions"],
        json!([{"Name": "ClusterName", "Value": "c"}])
    );
    // 15 days later, everything has expired.
    ctx.now += 16.0 * 86400.0;
    let q_late = StatQuery {
        start: ctx.now - 20.0 * 86400.0,
        end: ctx.now,
        ..q
    };
    assert!(cw
        .statistics(&ctx.account, &ctx.region, ctx.now, &q_late)
        .is_empty());
    assert_eq!(
        list_metrics(&cw, &ctx, json!({})).expect("list")["Metrics"],
        json!([])
    );
}

#[test]
fn metrics_survive_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = ctx();
    {
        let store = Store::open(dir.path()).expect("open");
        let cw = CloudWatch::with_store(&store);
        put(&cw, &ctx, json!({"Namespace": "Durable", "MetricData": [{"MetricName": "m", "Value": 42.0, "Timestamp": ctx.now - 30.0}]})).expect("put");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let cw = CloudWatch::with_store(&store);
    let out = get_metric_statistics(&cw, &ctx, json!({"Namespace": "Durable", "MetricName": "m",
        "StartTime": ctx.now - 600.0, "EndTime": ctx.now, "Period": 600, "Statistics": ["Maximum"]})).expect("get");
    assert_eq!(out["Datapoints"][0]["Maximum"], json!(42.0));
    assert_eq!(
        list_metrics(&cw, &ctx, json!({})).expect("list")["Metrics"]
            .as_array()
            .expect("m")
            .len(),
        1
    );
}
