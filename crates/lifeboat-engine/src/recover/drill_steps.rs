//! `recover --drill`: restores go into sandboxes and checks look at them; steps that act on
//! live services are skipped with the reason.

use super::*;

impl Run<'_> {
    /// `--drill`: restores and checks in sandboxes; live-service steps skipped.
    pub(super) fn drill_step(&mut self, index: usize, step: &Step) -> Outcome {
        let skipped = |what: &str| {
            (
                StepStatus::Skipped,
                format!(
                    "drill: {what} acts on the live services, so it runs only in a live recovery"
                ),
            )
        };
        match step {
            Step::Restore {
                asset,
                snapshot,
                before,
                from,
                tables,
                to,
                ..
            } => {
                let (snapshot, before) = match choice_now(asset, snapshot.as_ref(), before.as_ref())
                {
                    Ok(s) => s,
                    Err(e) => return failed(e),
                };
                let sandbox = self.sandbox(
                    asset,
                    snapshot.as_deref(),
                    before.as_deref(),
                    from.as_deref(),
                );
                let outcome = match &sandbox {
                    Ok(r) if r.ok => {
                        let mut d = format!(
                            "snapshot {} restored into a sandbox in {}: {}",
                            r.snapshot.as_deref().unwrap_or("?"),
                            crate::human_secs(r.rto_secs),
                            r.compared.as_deref().unwrap_or("loaded")
                        );
                        if !tables.is_empty() || to.is_some() {
                            d.push_str(
                                " (the whole snapshot; a live recovery restores what the step names)",
                            );
                        }
                        done(d)
                    }
                    Ok(r) => failed(r.problems.join("; ")),
                    Err(e) => failed(with_hint(e)),
                };
                if let Ok(r) = sandbox {
                    if let (Some(id), Some(time)) = (&r.snapshot, r.snapshot_time) {
                        self.restored.push(RestoredAsset {
                            asset: asset.clone(),
                            step: index,
                            repository: from.clone(),
                            snapshot: id.clone(),
                            snapshot_time: time,
                            data_age_secs: r.rpo_secs.unwrap_or(0),
                            rpo_target_secs: r.rpo_target_secs,
                            target: "sandbox".into(),
                            safety_snapshot: None,
                            rollback: None,
                            kept: None,
                            damaged: None,
                        });
                    }
                    self.sandboxed.push((index, r));
                }
                outcome
            }
            Step::Check { asset } => {
                let earlier = self
                    .sandboxed
                    .iter()
                    .rev()
                    .find(|(_, r)| &r.asset == asset)
                    .map(|(i, r)| (*i, r.clone()));
                let (from_step, r) = match earlier {
                    Some(x) => x,
                    None => match self.sandbox(asset, None, None, None) {
                        Ok(r) => (index, r),
                        Err(e) => return failed(with_hint(&e)),
                    },
                };
                if !r.ok {
                    return failed(r.problems.join("; "));
                }
                let passed = r.checks.iter().filter(|c| c.ok).count();
                let whence = if from_step == index {
                    "newest snapshot restored into a sandbox".to_owned()
                } else {
                    format!("in the sandbox of step {from_step}")
                };
                done(format!(
                    "{whence}: {}; {passed} of {} check(s) passed",
                    r.compared.as_deref().unwrap_or("loaded"),
                    r.checks.len()
                ))
            }
            Step::Run { .. } => skipped("a command"),
            Step::Http { .. } => skipped("an HTTP check"),
            Step::Wait { .. } => skipped("a wait condition"),
            Step::Confirm { prompt } => (
                StepStatus::Skipped,
                format!("drill: asks the operator in a live recovery: {prompt}"),
            ),
            Step::Notify { .. } => (
                StepStatus::Skipped,
                "drill: notifies only in a live recovery".into(),
            ),
        }
    }

    /// Restores an asset's snapshot (or the newest regular one) into a sandbox and checks it.
    fn sandbox(
        &self,
        asset: &str,
        snapshot: Option<&str>,
        before: Option<&str>,
        from: Option<&str>,
    ) -> Result<SandboxRestore, EngineError> {
        let a = self.engine.asset(asset)?;
        let repo = self.engine.open_named_or_primary(from)?;
        let snap = match (snapshot, before) {
            (Some(id), _) if id != "latest" => Some(repo.find_snapshot(asset, Some(id))?),
            (_, Some(_)) => Some(self.engine.pick_snapshot(&repo, asset, None, before)?),
            (Some(_) | None, None) => repo
                .snapshots()?
                .into_iter()
                .rev()
                .find(|s| s.asset.as_deref() == Some(asset) && !s.is_safety()),
        };
        Ok(sandbox_restore(&repo, a, Ok(snap)))
    }
}
