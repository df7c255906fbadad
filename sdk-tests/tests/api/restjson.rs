//! rest-json through aws-sdk-efs.

use crate::{assert_not_implemented, status};
use aws_sdk_efs::error::ProvideErrorMetadata;
use sdk_tests::{implemented, Emulator};

#[tokio::test]
async fn efs_describe_file_systems_error_decoding() {
    let emu = Emulator::start();
    let efs = emu.efs();
    if implemented("efs", "DescribeFileSystems") {
        let out = efs
            .describe_file_systems()
            .send()
            .await
            .expect("DescribeFileSystems");
        assert!(out.file_systems().is_empty(), "a fresh emulator has none");
        let err = efs
            .describe_file_systems()
            .file_system_id("fs-00000000")
            .send()
            .await
            .expect_err("an unknown file system");
        assert_eq!(err.code(), Some("FileSystemNotFound"), "{err:?}");
        assert_eq!(status(&err), Some(404));
        assert!(err.into_service_error().is_file_system_not_found());
    } else {
        let err = efs
            .describe_file_systems()
            .send()
            .await
            .expect_err("not implemented yet");
        assert_not_implemented(&err, "DescribeFileSystems");
        // The code travels in x-amzn-errortype.
        let r = emu.raw("GET", "/2015-02-01/file-systems", &[], b"");
        assert_eq!(r.status, 501, "{}", r.text());
        assert_eq!(r.header("x-amzn-errortype"), Some("NotImplemented"));
        let body = r.json();
        assert!(
            body["message"]
                .as_str()
                .or(body["Message"].as_str())
                .is_some_and(|m| m.contains("DescribeFileSystems")),
            "{body}"
        );
    }
}
