use std::net::{Ipv4Addr, TcpStream};

use lifeboat_testing::MotoServer;

#[test]
fn put_list_get_delete_then_port_closes_on_drop() -> anyhow::Result<()> {
    let s3 = MotoServer::start()?;
    let port = s3.port();
    assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{port}"));

    s3.create_bucket("lifeboat-it")?;
    let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    s3.put_object("lifeboat-it", "snapshots/été 1.bin", &blob)?;
    s3.put_object("lifeboat-it", "snapshots/a&b.txt", b"amp")?;
    s3.put_object("lifeboat-it", "config", b"{}")?;

    assert_eq!(
        s3.list_keys("lifeboat-it", "snapshots/")?,
        ["snapshots/a&b.txt", "snapshots/été 1.bin"]
    );
    assert_eq!(s3.list_keys("lifeboat-it", "")?.len(), 3);
    assert_eq!(s3.get_object("lifeboat-it", "snapshots/été 1.bin")?, blob);
    assert_eq!(s3.get_object("lifeboat-it", "config")?, b"{}");

    s3.delete_object("lifeboat-it", "snapshots/a&b.txt")?;
    assert_eq!(
        s3.list_keys("lifeboat-it", "snapshots/")?,
        ["snapshots/été 1.bin"]
    );

    drop(s3);
    let connect = TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    assert!(
        connect.is_err(),
        "port {port} still accepts connections after drop"
    );
    Ok(())
}

#[test]
fn errors_name_the_object_and_the_s3_code() -> anyhow::Result<()> {
    let s3 = MotoServer::start()?;
    s3.create_bucket("present")?;

    let missing_key = format!("{:#}", s3.get_object("present", "nope").unwrap_err());
    assert!(
        missing_key.contains(r#"get object "nope" from bucket "present""#),
        "{missing_key}"
    );
    assert!(missing_key.contains("HTTP 404 NoSuchKey"), "{missing_key}");

    let missing_bucket = format!("{:#}", s3.list_keys("absent", "").unwrap_err());
    assert!(
        missing_bucket.contains("HTTP 404 NoSuchBucket"),
        "{missing_bucket}"
    );

    let aws = s3.aws_env();
    assert!(
        aws.contains(&("AWS_REGION".to_owned(), "us-east-1".to_owned())),
        "{aws:?}"
    );
    Ok(())
}
