//! docs/plan-reference.md against the plan model: each of its tables lists exactly the keys
//! the matching part of the plan accepts. The keys come from the model itself (the field
//! names serde knows for each configuration struct, and the per-kind key lists), so the page
//! cannot drift from the code.

use std::collections::BTreeSet;

use lifeboat_core::AssetKind;
use serde::{
    Deserializer,
    de::{DeserializeOwned, Error as _, Visitor, value::Error},
};

use crate::{
    config::{
        AnomalyConfig, AssetConfig, PlanConfig, PlanFileConfig, RepositoryConfig, RetentionConfig,
        ScenarioConfig, SchedulesConfig, SizeConfig, StepConfig,
    },
    dashboard::{DashboardConfig, UserConfig},
    notify::NotifyConfig,
};

const PAGE: &str = include_str!("../../../docs/plan-reference.md");

/// A deserializer that only records the field names a struct asks for.
struct Fields<'a>(&'a mut Vec<&'static str>);

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Error> {
        self.0.extend_from_slice(fields);
        Err(Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<T: DeserializeOwned>() -> BTreeSet<&'static str> {
    let mut out = Vec::new();
    let _ = T::deserialize(Fields(&mut out));
    assert!(
        !out.is_empty(),
        "{} records no fields",
        std::any::type_name::<T>()
    );
    out.into_iter().collect()
}

/// The page's sections: heading, and the keys of its table.
fn sections() -> Vec<(String, BTreeSet<String>)> {
    PAGE.split("\n## ")
        .skip(1)
        .map(|section| {
            let heading = section.lines().next().unwrap_or_default().to_owned();
            let keys = section
                .lines()
                .filter_map(|l| l.strip_prefix("| `"))
                .filter_map(|l| l.split('`').next())
                .map(str::to_owned)
                .collect();
            (heading, keys)
        })
        .collect()
}

fn owned(keys: impl IntoIterator<Item = &'static str>) -> BTreeSet<String> {
    keys.into_iter().map(str::to_owned).collect()
}

#[test]
fn every_key_of_the_plan_model_is_on_the_reference_page_and_nothing_else() {
    let mut expected: Vec<(String, BTreeSet<String>)> = vec![
        ("Top level".into(), owned(fields::<PlanFileConfig>())),
        ("`[plan]`".into(), owned(fields::<PlanConfig>())),
        (
            "`[repositories.NAME]`".into(),
            owned(fields::<RepositoryConfig>()),
        ),
        (
            "`[assets.NAME]`, every kind".into(),
            owned(AssetConfig::COMMON_KEYS.iter().copied()),
        ),
        (
            "`retention = { … }`".into(),
            owned(fields::<RetentionConfig>()),
        ),
        ("`anomaly = { … }`".into(), owned(fields::<AnomalyConfig>())),
        ("`size = { … }`".into(), owned(fields::<SizeConfig>())),
        ("`[notify.NAME]`".into(), owned(fields::<NotifyConfig>())),
        ("`[[scenarios]]`".into(), owned(fields::<ScenarioConfig>())),
        ("Scenario steps".into(), owned(fields::<StepConfig>())),
        ("`[schedules]`".into(), owned(fields::<SchedulesConfig>())),
        ("`[dashboard]`".into(), owned(fields::<DashboardConfig>())),
        (
            "`[dashboard.users.NAME]`".into(),
            owned(fields::<UserConfig>()),
        ),
    ];
    for kind in AssetKind::ALL {
        expected.push((
            format!("`type = \"{}\"`", kind.as_str()),
            owned(AssetConfig::kind_keys(kind).iter().copied()),
        ));
    }
    let page = sections();
    for (heading, keys) in &expected {
        let Some((_, listed)) = page.iter().find(|(h, _)| h == heading) else {
            panic!("docs/plan-reference.md has no section \"## {heading}\"");
        };
        let missing: Vec<_> = keys.difference(listed).collect();
        let extra: Vec<_> = listed.difference(keys).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "docs/plan-reference.md, {heading}: not listed {missing:?}, not in the plan model {extra:?}"
        );
    }
    for (heading, _) in &page {
        assert!(
            expected.iter().any(|(h, _)| h == heading),
            "docs/plan-reference.md: section \"{heading}\" matches no part of the plan model"
        );
    }
}

#[test]
fn the_kinds_keys_are_every_asset_key() {
    // The per-kind lists the page is checked against cover the asset struct exactly.
    let mut listed: BTreeSet<&str> = AssetConfig::COMMON_KEYS.iter().copied().collect();
    for kind in AssetKind::ALL {
        listed.extend(AssetConfig::kind_keys(kind));
    }
    assert_eq!(listed, fields::<AssetConfig>());
}
