//! Every kind of error, with its exact message, position and key path.

use crate::{HEAD, MINIMAL, err, error, ok};

#[test]
fn error_fields_carry_position_path_and_hint() {
    let e = error(&format!("{MINIMAL}retention = {{ dayly = 7 }}\n"));
    assert_eq!(e.file, std::path::Path::new(crate::FILE));
    assert_eq!((e.line, e.column), (Some(7), Some(15)));
    assert_eq!(e.key_path, "assets.web.retention.dayly");
    assert_eq!(e.message, "unknown key, did you mean daily?");
    assert_eq!(e.hint, None);
}

#[test]
fn malformed_toml_reports_toml_position() {
    assert_eq!(
        err("version = 1\n[plan\nname = \"x\"\n"),
        "/plans/lifeboat.toml:2:6: invalid TOML: unclosed table, expected `]`"
    );
    assert_eq!(
        err("version = 1\nversion = 2\n"),
        "/plans/lifeboat.toml:2:1: invalid TOML: duplicate key"
    );
}

#[test]
fn did_you_mean_at_every_depth() {
    let cases = [
        (
            "[asset.db]\ntype = \"files\"\n",
            "/plans/lifeboat.toml:7:2: asset: unknown key, did you mean assets?",
        ),
        (
            "[assets.web.retention]\ndaily = 7\nmontly = 3\n",
            "/plans/lifeboat.toml:9:1: assets.web.retention.montly: unknown key, did you mean monthly?",
        ),
        (
            "[repositories.local]\nurl = \"/x\"\npasword-env = \"X\"\n",
            "/plans/lifeboat.toml:9:1: repositories.local.pasword-env: unknown key, did you mean password-env?",
        ),
        (
            "[notify.ops]\ntype = \"slack\"\nurl-evn = \"X\"\n",
            "/plans/lifeboat.toml:9:1: notify.ops.url-evn: unknown key for a notifier of type slack, did you mean url-env?",
        ),
        (
            "[[scenarios]]\nname = \"s\"\nstpes = []\n",
            "/plans/lifeboat.toml:9:1: scenarios[0].stpes: unknown key, did you mean steps?",
        ),
        (
            "[[scenarios]]\nname = \"s\"\nsteps = [\n  { run = \"a\" },\n  { check = \"web\" },\n  { http = \"http://x/\", expext = 200 },\n]\n",
            "/plans/lifeboat.toml:12:25: scenarios[0].steps[2].expext: unknown key for an http step, did you mean expect?",
        ),
        (
            "[[scenarios]]\nname = \"s\"\nsteps = [{ rn = \"x\" }]\n",
            "/plans/lifeboat.toml:9:12: scenarios[0].steps[0].rn: unknown key, did you mean run?",
        ),
    ];
    for (tail, expected) in cases {
        assert_eq!(err(&format!("{MINIMAL}{tail}")), expected, "{tail}");
    }
    // Top-level keys must come before the first table.
    assert_eq!(
        err(&format!("asset = 1\n{MINIMAL}")),
        "/plans/lifeboat.toml:1:1: asset: unknown key, did you mean assets?"
    );
    // [plan] sits before the asset, so use HEAD directly.
    assert_eq!(
        err(&format!("{HEAD}nmae = \"y\"\n")),
        "/plans/lifeboat.toml:4:1: plan.nmae: unknown key, did you mean name?"
    );
    // Inline table, one level deeper than the asset.
    assert_eq!(
        err(&format!("{MINIMAL}retention = {{ dayly = 7 }}\n")),
        "/plans/lifeboat.toml:7:15: assets.web.retention.dayly: unknown key, did you mean daily?"
    );
}

#[test]
fn unknown_key_without_a_close_match_lists_the_keys() {
    assert_eq!(
        err("frobnicate = 1\nversion = 1\n"),
        "/plans/lifeboat.toml:1:1: frobnicate: unknown key\n  hint: expected one of: version, plan, repositories, assets, notify, scenarios, schedules, dashboard"
    );
    assert_eq!(
        err(&format!("{MINIMAL}retention = {{ forever = true }}\n")),
        "/plans/lifeboat.toml:7:15: assets.web.retention.forever: unknown key\n  hint: expected one of: last, hourly, daily, weekly, monthly, yearly, within"
    );
}

#[test]
fn asset_keys_depend_on_the_asset_type() {
    assert_eq!(
        err(&format!("{MINIMAL}url = \"postgres://x@y/z\"\n")),
        "/plans/lifeboat.toml:7:1: assets.web.url: unknown key for an asset of type files\n  hint: url is accepted by: postgres, postgres-cluster, redis, mysql; an asset of type files takes: type, priority, schedule, rpo, rto, retention, anomaly, size, checks, paths, exclude, one-file-system, redact"
    );
    assert_eq!(
        err(&format!(
            "{HEAD}[assets.web]\ntype = \"files\"\npathz = [\"/srv\"]\n"
        )),
        "/plans/lifeboat.toml:6:1: assets.web.pathz: unknown key for an asset of type files, did you mean paths?"
    );
    assert_eq!(
        err(&format!("{HEAD}[assets.db]\ntype = \"pg\"\n")),
        "/plans/lifeboat.toml:5:8: assets.db.type: unknown asset type \"pg\"\n  hint: expected one of: postgres, postgres-cluster, sqlite, redis, mysql, files, docker-volume, command"
    );
    assert_eq!(
        err(&format!("{HEAD}[assets.db]\nurl = \"postgres://u@h/db\"\n")),
        "/plans/lifeboat.toml:4:9: assets.db.type: missing key\n  hint: add type = one of: postgres, postgres-cluster, sqlite, redis, mysql, files, docker-volume, command"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\n[[scenarios.steps]]\ncheck = \"web\"\ntimeout = \"5m\"\n"
        )),
        "/plans/lifeboat.toml:11:1: scenarios[0].steps[0].timeout: unknown key for a check step\n  hint: timeout is accepted by: run, wait; a check step takes: check"
    );
}

#[test]
fn steps_need_exactly_one_verb() {
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ run = \"a\", check = \"web\" }}]\n"
        )),
        "/plans/lifeboat.toml:9:23: scenarios[0].steps[0].check: a step has one verb, found both run and check\n  hint: split it into two steps"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ expect = 200 }}]\n"
        )),
        "/plans/lifeboat.toml:9:10: scenarios[0].steps[0]: a step needs a verb\n  hint: write the step as { run = \"...\" }; verbs: run, restore, check, http, wait, confirm, notify"
    );
}

#[test]
fn a_restore_step_picks_its_snapshot_by_id_or_by_time() {
    let text = err(&format!(
        "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ restore = \"web\", snapshot = \"ab12\", before = \"2026-12-05 10:00\" }}]\n"
    ));
    assert!(
        text.contains("scenarios[0].steps[0].before: a step restores one snapshot: `snapshot` or `before`, not both"),
        "{text}"
    );
}

#[test]
fn http_steps_keep_tokens_out_of_the_plan() {
    let text = err(&format!(
        "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ http = \"http://x\", headers = {{ Authorization = \"Bearer abc\" }} }}]\n"
    ));
    assert!(
        text.contains(
            "scenarios[0].steps[0].headers.Authorization: a token in the plan would show"
        ),
        "{text}"
    );
    assert!(
        text.contains("bearer-env, bearer-file or bearer-command"),
        "{text}"
    );
    let text = err(&format!(
        "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ http = \"http://x\", method = \"FETCH\" }}]\n"
    ));
    assert!(
        text.contains("scenarios[0].steps[0].method: unknown HTTP method \"FETCH\""),
        "{text}"
    );
}

#[test]
fn step_references_must_exist() {
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ restore = \"wbe\" }}]\n"
        )),
        "/plans/lifeboat.toml:9:22: scenarios[0].steps[0].restore: no asset named \"wbe\", did you mean web?"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ check = \"nothing-like-it\" }}]\n"
        )),
        "/plans/lifeboat.toml:9:20: scenarios[0].steps[0].check: no asset named \"nothing-like-it\"\n  hint: expected one of: web"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ notify = \"hi\", target = \"ops\" }}]\n"
        )),
        "/plans/lifeboat.toml:9:36: scenarios[0].steps[0].target: no notifier named \"ops\"\n  hint: the plan defines no notifier"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ http = \"http://x\", expect = 999 }}]\n"
        )),
        "/plans/lifeboat.toml:9:40: scenarios[0].steps[0].expect: 999 is not an HTTP status code (100-599)"
    );
}

#[test]
fn plan_header_errors() {
    assert_eq!(
        err("[plan]\nname = \"x\"\n"),
        "/plans/lifeboat.toml: version: missing key\n  hint: add version = 1 at the top of the plan file"
    );
    assert_eq!(
        err("version = 2\n[plan]\nname = \"x\"\n"),
        "/plans/lifeboat.toml:1:11: version: unsupported version 2\n  hint: this Lifeboat reads version = 1 plan files"
    );
    assert_eq!(
        err("version = \"1\"\n"),
        "/plans/lifeboat.toml:1:11: version: expected a non-negative integer, found a string"
    );
    assert_eq!(
        err("version = 1\n"),
        "/plans/lifeboat.toml: plan: missing table [plan]\n  hint: add [plan] with name = \"my-services\""
    );
    assert_eq!(
        err("version = 1\n[plan]\nrpo = \"1h\"\n"),
        "/plans/lifeboat.toml:2:2: plan.name: missing key\n  hint: name = \"my-services\"; it tags every snapshot"
    );
    assert_eq!(
        err(HEAD),
        "/plans/lifeboat.toml: assets: a plan needs at least one asset\n  hint: add [assets.NAME] with type = \"postgres\", \"sqlite\", \"redis\", \"mysql\", \"files\" or \"command\""
    );
}

#[test]
fn names_follow_the_tag_rule() {
    assert_eq!(
        err("version = 1\n[plan]\nname = \"My Plan\"\n"),
        "/plans/lifeboat.toml:3:8: plan.name: invalid name \"My Plan\": 'M' is not allowed; use lowercase letters, digits, '-' and '_', starting with a letter or digit\n  hint: names become snapshot tags, where commas, '=' and spaces break things; try \"my-plan\""
    );
    assert_eq!(
        err(&format!(
            "{HEAD}[assets.\"a,b\"]\ntype = \"files\"\npaths = [\"/a\"]\n"
        )),
        "/plans/lifeboat.toml:4:9: assets.\"a,b\": invalid name \"a,b\": ',' is not allowed; use lowercase letters, digits, '-' and '_', starting with a letter or digit\n  hint: names become snapshot tags, where commas, '=' and spaces break things; try \"a-b\""
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[[scenarios]]\nname = \"s\"\nsteps = [{{ run = \"x\" }}]\n[[scenarios]]\nname = \"s\"\nsteps = [{{ run = \"y\" }}]\n"
        )),
        "/plans/lifeboat.toml:11:8: scenarios[1].name: scenario \"s\" is already defined at scenarios[0]\n  hint: scenario names must be unique: `lifeboat recover NAME` picks one"
    );
}

#[test]
fn durations_name_their_key() {
    assert_eq!(
        err(&format!("{MINIMAL}rpo = \"4x\"\n")),
        "/plans/lifeboat.toml:7:7: assets.web.rpo: invalid duration \"4x\": unknown time unit \"x\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)\n  hint: write durations like \"30m\", \"4h\" or \"1d 2h\""
    );
    assert_eq!(
        err("version = 1\n[plan]\nname = \"x\"\nrto = \"0s\"\n"),
        "/plans/lifeboat.toml:4:7: plan.rto: duration must be longer than zero\n  hint: write durations like \"30m\", \"4h\" or \"1d 2h\""
    );
    assert_eq!(
        err(&format!("{MINIMAL}retention.within = \"2 fortnights\"\n")),
        "/plans/lifeboat.toml:7:20: assets.web.retention.within: invalid duration \"2 fortnights\": unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)\n  hint: write durations like \"30m\", \"4h\" or \"1d 2h\""
    );
}

#[test]
fn cron_schedules_have_exactly_five_fields() {
    let hint =
        "\n  hint: use 5 fields, minute hour day-of-month month day-of-week, e.g. \"0 */6 * * *\"";
    for (expr, croner) in [
        ("61 * * * *", "Component error: Number out of bounds."),
        (
            "* * * *",
            "Invalid pattern: Pattern must have 5 fields when seconds are disallowed.",
        ),
        (
            "0 0 * * * *",
            "Invalid pattern: Pattern must have 5 fields when seconds are disallowed.",
        ),
    ] {
        assert_eq!(
            err(&format!("{MINIMAL}schedule = \"{expr}\"\n")),
            format!(
                "/plans/lifeboat.toml:7:12: assets.web.schedule: invalid cron expression \"{expr}\": {croner}{hint}"
            )
        );
    }
}

#[test]
fn value_errors() {
    let cases = [
        (
            "priority = \"p0\"\n",
            "/plans/lifeboat.toml:7:12: assets.web.priority: unknown value \"p0\", did you mean P0?",
        ),
        (
            "retention = { daily = 0 }\n",
            "/plans/lifeboat.toml:7:23: assets.web.retention.daily: must be at least 1\n  hint: leave daily out to keep nothing by that rule",
        ),
        (
            "retention = { monthly = \"always\" }\n",
            "/plans/lifeboat.toml:7:25: assets.web.retention.monthly: \"always\" is neither a count nor \"forever\"\n  hint: monthly = 12 keeps twelve, monthly = \"forever\" keeps one for every period",
        ),
        (
            "retention = { last = -1 }\n",
            "/plans/lifeboat.toml:7:22: assets.web.retention.last: expected a non-negative integer, found -1",
        ),
        (
            "retention = 5\n",
            "/plans/lifeboat.toml:7:13: assets.web.retention: expected a table, found an integer",
        ),
        (
            "redact = \"keys\"\n",
            "/plans/lifeboat.toml:7:10: assets.web.redact: unknown value \"keys\"\n  hint: expected one of: values",
        ),
        (
            "exclude = [\"a[b\"]\n",
            "/plans/lifeboat.toml:7:12: assets.web.exclude[0]: invalid glob \"a[b\": unclosed character class; missing ']'\n  hint: e.g. \"*.tmp\", \"**/cache/**\"",
        ),
        (
            "one-file-system = \"yes\"\n",
            "/plans/lifeboat.toml:7:19: assets.web.one-file-system: expected a boolean (true or false), found a string",
        ),
    ];
    for (tail, expected) in cases {
        assert_eq!(err(&format!("{MINIMAL}{tail}")), expected, "{tail}");
    }
}

#[test]
fn asset_type_specific_errors() {
    let cases = [
        (
            "type = \"files\"\npaths = [\"/a\", \"/a/b\"]\n",
            "/plans/lifeboat.toml:6:16: assets.x.paths[1]: /a/b is inside /a, which is also listed\n  hint: list only /a; use exclude to leave parts of it out",
        ),
        (
            "type = \"files\"\npaths = []\n",
            "/plans/lifeboat.toml:6:9: assets.x.paths: needs at least one path\n  hint: paths = [\"/srv/data\"]",
        ),
        (
            "type = \"files\"\n",
            "/plans/lifeboat.toml:4:9: assets.x.paths: missing key\n  hint: paths = [\"/srv/data\"]",
        ),
        (
            "type = \"files\"\npaths = \"/a\"\n",
            "/plans/lifeboat.toml:6:9: assets.x.paths: expected an array, found a string",
        ),
        (
            "type = \"postgres\"\n",
            "/plans/lifeboat.toml:4:9: assets.x.url: missing key\n  hint: url = \"postgres://user@localhost:5432/db\"",
        ),
        (
            "type = \"postgres\"\nurl = \"mysql://x@y/z\"\n",
            "/plans/lifeboat.toml:6:7: assets.x.url: unsupported URL scheme \"mysql\"\n  hint: use postgres:// or postgresql://, e.g. postgres://user@localhost:5432/db",
        ),
        (
            "type = \"postgres\"\nurl = \"postgres://x@y/z\"\njobs = 0\n",
            "/plans/lifeboat.toml:7:8: assets.x.jobs: must be at least 1",
        ),
        (
            "type = \"postgres\"\nurl = \"postgres://x@y/z\"\npassword-env = \"A\"\npassword-file = \"b\"\n",
            "/plans/lifeboat.toml:8:1: assets.x.password-file: password-env and password-file are both given\n  hint: keep only one of password-env, password-file and password-command",
        ),
        (
            "type = \"sqlite\"\n",
            "/plans/lifeboat.toml:4:9: assets.x.path: missing key\n  hint: path = \"/var/lib/app/app.db\"",
        ),
        (
            "type = \"command\"\nrestore = \"x\"\n",
            "/plans/lifeboat.toml:4:9: assets.x.backup: missing key\n  hint: backup = \"a command writing the backup to stdout\"",
        ),
        (
            "type = \"command\"\nbackup = \"x\"\nfilename = \"a/b\"\n",
            "/plans/lifeboat.toml:7:12: assets.x.filename: \"a/b\" is not a plain file name\n  hint: write a name without '/', e.g. \"vault.snap\"",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            err(&format!("{HEAD}[assets.x]\n{body}")),
            expected,
            "{body}"
        );
    }
}

#[test]
fn repository_errors() {
    let tail = "[assets.web]\ntype = \"files\"\npaths = [\"/a\"]\n";
    let cases = [
        (
            "[repositories.local]\nurl = \"/x\"\n",
            "/plans/lifeboat.toml:4:1: repositories.local: missing password source\n  hint: add one of password-env = \"LIFEBOAT_PASSWORD\", password-file = \"/path\" or password-command = \"pass show lifeboat\"",
        ),
        (
            "[repositories.local]\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:4:15: repositories.local.url: missing key\n  hint: url = \"/var/backups/lifeboat\" (a path) or \"s3://bucket/prefix?endpoint=...&region=...\"",
        ),
        (
            "[repositories]\n",
            "/plans/lifeboat.toml:4:1: repositories: no repository in [repositories]\n  hint: add [repositories.NAME] with url and password-env, or remove [repositories] to use .lifeboat/repo beside the plan",
        ),
        (
            "[repositories.a]\nurl = \"sftp://host/x\"\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:5:7: repositories.a.url: unsupported repository URL scheme \"sftp\"\n  hint: use a path (absolute, or relative to the plan file) or s3://bucket/prefix?endpoint=...&region=...",
        ),
        (
            "[repositories.a]\nurl = \"s3://b/p?regoin=x\"\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:5:7: repositories.a.url: unknown query parameter \"regoin\" in S3 URL, did you mean region?\n  hint: known parameters: endpoint, region, path-style, storage-class, timeout",
        ),
        (
            "[repositories.a]\nurl = \"s3://b/p?endpoint=nyc3.example.com\"\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:5:7: repositories.a.url: S3 endpoint must be an http:// or https:// URL\n  hint: e.g. endpoint=https://nyc3.digitaloceanspaces.com",
        ),
        (
            "[repositories.a]\nurl = \"s3:///p\"\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:5:7: repositories.a.url: S3 URL has no bucket\n  hint: write s3://BUCKET/prefix",
        ),
        (
            "[repositories.a]\nurl = \"/a\"\npassword-env = \"X\"\ncopy-from = \"a\"\n",
            "/plans/lifeboat.toml:7:13: repositories.a.copy-from: a repository cannot copy from itself\n  hint: name the repository whose snapshots should be copied here",
        ),
        (
            "[repositories.a]\nurl = \"/a\"\npassword-env = \"X\"\ncopy-from = \"locl\"\n[repositories.local]\nurl = \"/b\"\npassword-env = \"X\"\n",
            "/plans/lifeboat.toml:7:13: repositories.a.copy-from: no repository named \"locl\", did you mean local?",
        ),
        (
            "[repositories.a]\nurl = \"/a\"\npassword-env = \"X\"\ncopy-from = \"b\"\n[repositories.b]\nurl = \"/b\"\npassword-env = \"X\"\ncopy-from = \"a\"\n",
            "/plans/lifeboat.toml:7:13: repositories.a.copy-from: copy-from forms a cycle: a <- b <- a\n  hint: copies flow one way, from the primary outwards",
        ),
        (
            "[repositories.a]\nurl = \"/a\"\npassword-env = \"X\"\naccess-key-id-env = \"A\"\n",
            "/plans/lifeboat.toml:7:1: repositories.a.access-key-id-env: S3 keys apply to s3:// repositories only\n  hint: remove it, or change url to s3://bucket/prefix",
        ),
        (
            "[repositories.a]\nurl = \"s3://b\"\npassword-env = \"X\"\naccess-key-id-env = \"A\"\n",
            "/plans/lifeboat.toml:4:15: repositories.a.secret-access-key-env: missing key\n  hint: access-key-id-env and secret-access-key-env go together",
        ),
    ];
    for (repos, expected) in cases {
        assert_eq!(err(&format!("{HEAD}{repos}{tail}")), expected, "{repos}");
    }
}

#[test]
fn notifier_errors() {
    let cases = [
        (
            "type = \"slak\"\n",
            "/plans/lifeboat.toml:8:8: notify.x.type: unknown notifier type \"slak\", did you mean slack?",
        ),
        (
            "type = \"slack\"\n",
            "/plans/lifeboat.toml:7:9: notify.x.url-env: missing key\n  hint: add url-env = \"SLACK_WEBHOOK_URL\", url-file or url-command",
        ),
        (
            "type = \"pagerduty\"\n",
            "/plans/lifeboat.toml:7:9: notify.x.routing-key-env: missing key\n  hint: add routing-key-env = \"PAGERDUTY_ROUTING_KEY\", routing-key-file or routing-key-command",
        ),
        (
            "type = \"webhook\"\nurl = \"ftp://x\"\n",
            "/plans/lifeboat.toml:9:7: notify.x.url: webhook url must be an http:// or https:// URL\n  hint: e.g. url = \"https://hooks.example.com/lifeboat\"",
        ),
        (
            "type = \"webhook\"\nurl = \"https://x\"\non = []\n",
            "/plans/lifeboat.toml:10:6: notify.x.on: lists no event\n  hint: leave on out for [\"failure\", \"rpo-breach\"], or remove the notifier",
        ),
        (
            "type = \"slack\"\nurl-env = \"X\"\non = [\"failed\"]\n",
            "/plans/lifeboat.toml:10:7: notify.x.on[0]: unknown value \"failed\", did you mean failure?",
        ),
        (
            "type = \"slack\"\nrouting-key-env = \"X\"\n",
            "/plans/lifeboat.toml:9:1: notify.x.routing-key-env: unknown key for a notifier of type slack\n  hint: routing-key-env is accepted by: pagerduty; a notifier of type slack takes: type, url-env, url-file, url-command, on",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            err(&format!("{MINIMAL}[notify.x]\n{body}")),
            expected,
            "{body}"
        );
    }
}

#[test]
fn unset_variables_name_key_and_variable() {
    assert_eq!(
        err(&format!(
            "{HEAD}[assets.web]\ntype = \"files\"\npaths = [\"${{LIFEBOAT_TEST_SURELY_UNSET}}/a\"]\n"
        )),
        "/plans/lifeboat.toml:6:10: assets.web.paths[0]: environment variable LIFEBOAT_TEST_SURELY_UNSET is not set\n  hint: set LIFEBOAT_TEST_SURELY_UNSET, give a default with ${LIFEBOAT_TEST_SURELY_UNSET:-value}, or write the value without ${LIFEBOAT_TEST_SURELY_UNSET}"
    );
    assert_eq!(
        err(&format!(
            "{MINIMAL}[repositories.a]\nurl = \"${{HOME\"\npassword-env = \"X\"\n"
        )),
        "/plans/lifeboat.toml:8:7: repositories.a.url: unterminated ${ in value\n  hint: write ${NAME} for a variable, or $${ for a literal ${"
    );
}

#[test]
fn load_reports_a_missing_file() {
    let e = lifeboat_plan::load(std::path::Path::new("/nonexistent/lifeboat.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/lifeboat.toml: read plan file: No such file or directory (os error 2)\n  hint: write a lifeboat.toml, or point --config or LIFEBOAT_CONFIG at one"
    );
}

#[test]
fn anomaly_thresholds_must_lie_on_either_side_of_one() {
    let below_hint = "\n  hint: a fraction of the average size of the previous snapshots: below = 0.5 reports a snapshot smaller than half of it";
    let above_hint = "\n  hint: a multiple of the average size of the previous snapshots: above = 2.0 reports a snapshot more than twice as large";
    for (tail, expected) in [
        (
            "anomaly = { below = 0 }\n",
            format!(
                "/plans/lifeboat.toml:7:21: assets.web.anomaly.below: must be more than 0 and less than 1{below_hint}"
            ),
        ),
        (
            "anomaly = { below = 1.5 }\n",
            format!(
                "/plans/lifeboat.toml:7:21: assets.web.anomaly.below: must be more than 0 and less than 1{below_hint}"
            ),
        ),
        (
            "anomaly = { below = nan }\n",
            format!(
                "/plans/lifeboat.toml:7:21: assets.web.anomaly.below: must be more than 0 and less than 1{below_hint}"
            ),
        ),
        (
            "anomaly = { below = 0.2, above = 0.9 }\n",
            format!(
                "/plans/lifeboat.toml:7:34: assets.web.anomaly.above: must be more than 1{above_hint}"
            ),
        ),
        (
            "[assets.web.anomaly]\nabove = inf\n",
            format!(
                "/plans/lifeboat.toml:8:9: assets.web.anomaly.above: must be more than 1{above_hint}"
            ),
        ),
        (
            "anomaly = { below = \"50%\" }\n",
            "/plans/lifeboat.toml:7:21: assets.web.anomaly.below: expected a number, found a string"
                .to_owned(),
        ),
        (
            "anomaly = { under = 0.5 }\n",
            "/plans/lifeboat.toml:7:13: assets.web.anomaly.under: unknown key\n  hint: expected one of: below, above"
                .to_owned(),
        ),
    ] {
        assert_eq!(err(&format!("{MINIMAL}{tail}")), expected, "{tail}");
    }
}

#[test]
fn size_bounds_name_their_key() {
    let text = err(&format!(
        "{HEAD}[assets.web]\ntype = \"files\"\npaths = [\"/srv\"]\nsize = {{ min = \"ten GB\" }}\n"
    ));
    assert!(
        text.contains("assets.web.size.min: \"ten GB\" is not a size")
            && text.contains("hint: decimal units (KB, MB, GB, TB)"),
        "{text}"
    );
    let text = err(&format!(
        "{HEAD}[assets.web]\ntype = \"files\"\npaths = [\"/srv\"]\nsize = {{ min = \"2GB\", max = \"1GB\" }}\n"
    ));
    assert!(
        text.contains("assets.web.size.max: is smaller than min"),
        "{text}"
    );
}

#[test]
fn scheduled_scenarios_must_exist() {
    let text = err(&format!(
        "{MINIMAL}[[scenarios]]\nname = \"loss\"\nsteps = [{{ check = \"web\" }}]\n\n[schedules]\nscenarios = {{ los = \"0 9 * * 5#1\" }}\n"
    ));
    assert!(
        text.contains("schedules.scenarios.los: no scenario named \"los\"")
            && text.contains("hint: the plan's scenarios: loss"),
        "{text}"
    );
}

#[test]
fn a_cluster_streams_its_wal_only_when_asked_and_at_a_valid_interval() {
    let cluster = "[assets.pg]\ntype = \"postgres-cluster\"\nurl = \"postgres://r@h/postgres\"\n";
    assert_eq!(
        err(&format!("{HEAD}{cluster}stream-interval = \"2s\"\n")),
        "/plans/lifeboat.toml:7:19: assets.pg.stream-interval: only a streamed WAL has an interval\n  hint: add wal = \"stream\", or remove stream-interval"
    );
    assert_eq!(
        err(&format!(
            "{HEAD}{cluster}wal = \"stream\"\nstream-interval = \"soon\"\n"
        )),
        "/plans/lifeboat.toml:8:19: assets.pg.stream-interval: invalid duration \"soon\": expected number at 0\n  hint: write durations like \"30m\", \"4h\" or \"1d 2h\""
    );
    assert_eq!(
        err(&format!("{HEAD}{cluster}wal = \"rsync\"\n")),
        "/plans/lifeboat.toml:7:7: assets.pg.wal: unknown value \"rsync\"\n  hint: expected one of: archive, stream"
    );
}

#[test]
fn dashboard_users_need_a_role_and_a_hash_never_a_password() {
    let user = "[dashboard.users.alice]\n";
    let e = err(&format!(
        "{MINIMAL}{user}password-hash-file = \"/etc/a.hash\"\n"
    ));
    assert!(
        e.contains("dashboard.users.alice.role: missing key") && e.contains("\"operator\""),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}{user}role = \"operator\"\n"));
    assert!(
        e.contains("dashboard.users.alice.password-hash-file: missing key")
            && e.contains("lifeboat hash-password"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}{user}role = \"admin\"\npassword-hash-env = \"H\"\n"
    ));
    assert!(e.contains("expected one of: viewer, operator"), "{e}");
    // A password in clear is refused by name, and its value is never echoed.
    let e = err(&format!(
        "{MINIMAL}{user}role = \"viewer\"\npassword = \"hunter2\"\n"
    ));
    assert!(
        e.contains("dashboard.users.alice.password") && !e.contains("hunter2"),
        "{e}"
    );
    // `token` is the API token's login: no user may take the name.
    let e = err(&format!(
        "{MINIMAL}[dashboard.users.token]\nrole = \"viewer\"\npassword-hash-env = \"H\"\n"
    ));
    assert!(
        e.contains("dashboard.users.token: a token may not be written"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}[dashboard]\nlogin = \"never\"\n"));
    assert!(e.contains("expected one of: off-loopback, always"), "{e}");
}

#[test]
fn a_dashboard_user_resolves_with_the_hash_source() {
    let plan = ok(&format!(
        "{MINIMAL}[dashboard]\nlogin = \"always\"\n[dashboard.users.bob]\nrole = \"viewer\"\npassword-hash-env = \"BOB_HASH\"\n"
    ));
    assert_eq!(plan.dashboard.login, lifeboat_plan::Login::Always);
    assert_eq!(plan.dashboard.users.len(), 1);
    assert_eq!(plan.dashboard.users[0].role, lifeboat_plan::Role::Viewer);
    assert_eq!(
        plan.dashboard.users[0].password_hash,
        lifeboat_plan::SecretSource::Env("BOB_HASH".into())
    );
    assert_eq!(
        ok(MINIMAL).dashboard.login,
        lifeboat_plan::Login::OffLoopback
    );
}

#[test]
fn only_an_s3_copy_can_have_an_object_lock_of_whole_days() {
    let repo = |url: &str, extra: &str| {
        format!(
            "{HEAD}[repositories.main]\nurl = \"/srv/b\"\npassword-env = \"P\"\n[repositories.off]\nurl = \"{url}\"\npassword-env = \"P\"\n{extra}[assets.web]\ntype = \"files\"\npaths = [\"/srv\"]\n"
        )
    };
    let s3 = "s3://b/p?region=eu-west-1";
    let e = err(&repo(
        "/mnt/copy",
        "copy-from = \"main\"\nobject-lock = \"30d\"\n",
    ));
    assert!(
        e.contains("repositories.off.object-lock: Object Lock is a feature of S3 buckets"),
        "{e}"
    );
    let e = err(&repo(s3, "object-lock = \"30d\"\n"));
    assert!(
        e.contains("only a copy can be locked") && e.contains("copy-from"),
        "{e}"
    );
    let e = err(&repo(s3, "copy-from = \"main\"\nobject-lock = \"36h\"\n"));
    assert!(e.contains("whole days"), "{e}");
    let plan = ok(&repo(s3, "copy-from = \"main\"\nobject-lock = \"30d\"\n"));
    assert_eq!(
        plan.repositories[1].object_lock(),
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
}

#[test]
fn an_email_notifier_needs_a_server_a_sender_recipients_and_a_whole_login() {
    let mail = |extra: &str| {
        format!(
            "{MINIMAL}[notify.mail]\ntype = \"email\"\nsmtp = \"smtp.example.com:587\"\nfrom = \"lb@example.com\"\nto = [\"ops@example.com\"]\n{extra}"
        )
    };
    assert!(ok(&mail("")).notify[0].email.is_some());
    let e = err(&format!(
        "{MINIMAL}[notify.mail]\ntype = \"email\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n"
    ));
    assert!(e.contains("notify.mail.smtp: missing key"), "{e}");
    let e = err(&mail("").replace("smtp.example.com:587", "smtp.example.com"));
    assert!(e.contains("notify.mail.smtp: not a host:port"), "{e}");
    let e = err(&mail("").replace("[\"ops@example.com\"]", "[\"ops\"]"));
    assert!(
        e.contains("notify.mail.to[0]") && e.contains("not an e-mail address"),
        "{e}"
    );
    let e = err(&mail("username = \"lb\"\n"));
    assert!(e.contains("a username needs password-env"), "{e}");
    let e = err(&mail("password-env = \"P\"\n"));
    assert!(e.contains("notify.mail.username: missing key"), "{e}");
    // The password itself never goes in the plan, and is never echoed.
    let e = err(&mail("username = \"lb\"\npassword = \"hunter2\"\n"));
    assert!(
        e.contains("notify.mail.password") && !e.contains("hunter2"),
        "{e}"
    );
    // Keys of another kind are refused by name.
    let e = err(&mail("url-env = \"X\"\n"));
    assert!(e.contains("url-env"), "{e}");
}

#[test]
fn docker_volume_errors_name_the_key() {
    let head = format!("{HEAD}[assets.v]\ntype = \"docker-volume\"\n");
    let cases = [
        ("", "assets.v.volume: missing key"),
        (
            "volume = \"/var/lib/x\"\n",
            "assets.v.volume: \"/var/lib/x\" is not a Docker volume name",
        ),
        (
            "volume = \"data\"\nstop = [\"app\", \"\"]\n",
            "assets.v.stop[1]: \"\" is not a container name",
        ),
        (
            "volume = \"data\"\nstop = [\"app\"]\npause = [\"app\"]\n",
            "assets.v.pause[0]: container app is listed twice",
        ),
        (
            "volume = \"data\"\ndocker-host = \"ssh://h\"\n",
            "assets.v.docker-host: \"ssh://h\" is not a Docker host Lifeboat can reach",
        ),
        (
            "volume = \"data\"\npaths = [\"/x\"]\n",
            "assets.v.paths: unknown key for an asset of type docker-volume",
        ),
    ];
    for (tail, expected) in cases {
        let e = err(&format!("{head}{tail}"));
        assert!(e.contains(expected), "{tail}: {e}");
    }
    let plan = ok(&format!(
        "{head}volume = \"shop_uploads\"\nstop = [\"shop-web-1\"]\npause = [\"shop-worker-1\"]\n"
    ));
    let lifeboat_plan::AssetSpec::DockerVolume(v) = &plan.asset("v").unwrap().spec else {
        panic!("{:?}", plan.asset("v"))
    };
    assert_eq!(
        (
            v.volume.as_str(),
            &v.stop[..],
            &v.pause[..],
            v.docker_host.as_deref()
        ),
        (
            "shop_uploads",
            &["shop-web-1".to_owned()][..],
            &["shop-worker-1".to_owned()][..],
            None
        )
    );
}
