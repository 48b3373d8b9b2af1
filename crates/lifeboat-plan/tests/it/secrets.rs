//! Secrets written in clear are refused, and their values never reach a message.

use crate::{HEAD, MINIMAL, err, ok};

/// The secret every refused plan below contains.
const SECRET: &str = "hunter2";

/// Plans that must fail, each with a clear-text secret somewhere, and the expected message.
fn refused() -> Vec<(String, &'static str)> {
    let files = "[assets.web]\ntype = \"files\"\npaths = [\"/a\"]\n";
    vec![
        (
            format!("{HEAD}[repositories.local]\nurl = \"/x\"\npassword = \"{SECRET}\"\n{files}"),
            "/plans/lifeboat.toml:6:1: repositories.local.password: a password may not be written in the plan file\n  hint: use password-env = \"LIFEBOAT_PASSWORD\", password-file or password-command",
        ),
        (
            format!(
                "{HEAD}[assets.db]\ntype = \"postgres\"\nurl = \"postgres://u:{SECRET}@h/db\"\n"
            ),
            "/plans/lifeboat.toml:6:7: assets.db.url: a URL may not contain a password\n  hint: remove it from the URL and use password-env, password-file or password-command",
        ),
        (
            format!("{HEAD}[assets.cache]\ntype = \"redis\"\nurl = \"redis://:{SECRET}@h:6379\"\n"),
            "/plans/lifeboat.toml:6:7: assets.cache.url: a URL may not contain a password\n  hint: remove it from the URL and use password-env, password-file or password-command",
        ),
        (
            format!(
                "{HEAD}[assets.db]\ntype = \"postgres\"\nurl = \"postgres://u@h/db?sslmode=require&password={SECRET}\"\n"
            ),
            "/plans/lifeboat.toml:6:7: assets.db.url: a URL may not carry a secret in its query parameter \"password\"\n  hint: keep the secret in the environment or a file and name that with a *-env or *-file key",
        ),
        (
            format!(
                "{MINIMAL}[notify.ops]\ntype = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/{SECRET}\"\n"
            ),
            "/plans/lifeboat.toml:9:1: notify.ops.url: a Slack webhook URL is a credential and may not be written in the plan file\n  hint: use url-env = \"SLACK_WEBHOOK_URL\", url-file or url-command",
        ),
        (
            format!(
                "{MINIMAL}[notify.hc]\ntype = \"healthchecks\"\nurl = \"https://hc-ping.com/{SECRET}\"\n"
            ),
            "/plans/lifeboat.toml:9:1: notify.hc.url: a Healthchecks ping URL is a credential and may not be written in the plan file\n  hint: use url-env = \"HEALTHCHECKS_URL\", url-file or url-command",
        ),
        (
            format!("{MINIMAL}[notify.pd]\ntype = \"pagerduty\"\nrouting-key = \"{SECRET}\"\n"),
            "/plans/lifeboat.toml:9:1: notify.pd.routing-key: a PagerDuty routing key may not be written in the plan file\n  hint: use routing-key-env = \"PAGERDUTY_ROUTING_KEY\", routing-key-file or routing-key-command",
        ),
        (
            format!(
                "{MINIMAL}[notify.hook]\ntype = \"webhook\"\nurl = \"https://example.com/hook?token={SECRET}\"\n"
            ),
            "/plans/lifeboat.toml:9:7: notify.hook.url: a URL may not carry a secret in its query parameter \"token\"\n  hint: keep the secret in the environment or a file and name that with a *-env or *-file key",
        ),
        (
            format!(
                "{HEAD}[repositories.s3]\nurl = \"s3://b/p\"\npassword-env = \"X\"\nsecret-access-key = \"{SECRET}\"\n{files}"
            ),
            "/plans/lifeboat.toml:7:1: repositories.s3.secret-access-key: an S3 secret access key may not be written in the plan file\n  hint: use secret-access-key-env = \"AWS_SECRET_ACCESS_KEY\" (or the standard AWS environment)",
        ),
        (
            format!(
                "{HEAD}[repositories.s3]\nurl = \"s3://b/p\"\npassword-env = \"X\"\naccess-key-id = \"{SECRET}\"\n{files}"
            ),
            "/plans/lifeboat.toml:7:1: repositories.s3.access-key-id: an S3 access key id may not be written in the plan file\n  hint: use access-key-id-env = \"AWS_ACCESS_KEY_ID\" (or the standard AWS environment)",
        ),
        (
            // Anywhere, even where the key would be unknown anyway.
            format!("{MINIMAL}retention = {{ token = \"{SECRET}\" }}\n"),
            "/plans/lifeboat.toml:7:15: assets.web.retention.token: a token may not be written in the plan file\n  hint: keep it in the environment or a file and name that with a *-env or *-file key",
        ),
        (
            format!(
                "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ secret = \"{SECRET}\" }}]\n"
            ),
            "/plans/lifeboat.toml:9:12: scenarios[0].steps[0].secret: a secret may not be written in the plan file\n  hint: keep it in the environment or a file and name that with a *-env or *-file key",
        ),
        (
            // A DSN in a shell command is as clear as one in `url`.
            format!(
                "{HEAD}[assets.dump]\ntype = \"command\"\nbackup = \"pg_dump postgres://app:{SECRET}@db/app\"\n"
            ),
            "/plans/lifeboat.toml:6:10: assets.dump.backup: a URL may not contain a password\n  hint: remove it from the URL and use password-env, password-file or password-command",
        ),
        (
            format!(
                "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ http = \"https://admin:{SECRET}@app/health\" }}]\n"
            ),
            "/plans/lifeboat.toml:9:19: scenarios[0].steps[0].http: a URL may not contain a password\n  hint: remove it from the URL and use password-env, password-file or password-command",
        ),
    ]
}

#[test]
fn clear_text_secrets_are_refused_with_a_hint() {
    for (text, expected) in refused() {
        assert_eq!(err(&text), expected, "{text}");
    }
}

#[test]
fn no_message_contains_a_secret_value() {
    let mut plans: Vec<String> = refused().into_iter().map(|(t, _)| t).collect();
    // Other failures on lines that hold a secret: syntax errors, type errors, bad values.
    plans.extend([
        format!("{HEAD}[assets.db]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\npassword = \"{SECRET}\n"),
        format!("{HEAD}[assets.db]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\njobs = \"{SECRET}\"\n"),
        format!("{MINIMAL}priority = {{ p = \"{SECRET}\" }}\n"),
        format!("{MINIMAL}one-file-system = \"{SECRET}\"\n"),
        format!("{HEAD}[repositories.s3]\nurl = \"s3://{SECRET}:{SECRET}@b/p\"\npassword-env = \"X\"\n"),
        format!("{HEAD}[assets.db]\ntype = \"postgres\"\nurl = \"postgres://u:{SECRET}@h:notaport/db\"\n"),
        format!("{MINIMAL}[notify.ops]\ntype = \"webhook\"\nurl-env = \"X\"\nurl = \"https://u:{SECRET}@x\"\n"),
    ]);
    for text in plans {
        let message = err(&text);
        assert!(!message.contains(SECRET), "{message}\n--- from:\n{text}");
    }
}

#[test]
fn references_and_secret_sources_are_not_secrets() {
    let plan = ok(&format!(
        "{HEAD}[repositories.local]\nurl = \"/x\"\npassword-file = \"/etc/lifeboat/pw\"\n\
         [assets.db]\ntype = \"postgres\"\nurl = \"postgres://app@db/app\"\npassword-env = \"PGPASSWORD\"\n\
         [assets.cmd]\ntype = \"command\"\nbackup = \"pg_dump postgres://app:$PGPASSWORD@db/app\"\n\
         [notify.hook]\ntype = \"webhook\"\nurl = \"https://example.com/hook?channel=ops\"\n\
         [notify.pd]\ntype = \"pagerduty\"\nrouting-key-command = \"pass show pd\"\n"
    ));
    let lifeboat_plan::AssetSpec::Postgres(pg) = &plan.asset("db").unwrap().spec else {
        panic!()
    };
    assert_eq!(
        pg.password,
        Some(lifeboat_plan::SecretSource::Env("PGPASSWORD".into()))
    );
    assert_eq!(
        plan.notify[0].plain_url.as_deref(),
        Some("https://example.com/hook?channel=ops")
    );
    assert_eq!(
        plan.notify[1].routing_key,
        Some(lifeboat_plan::SecretSource::Command("pass show pd".into()))
    );
}
