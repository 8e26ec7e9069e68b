//! The controller: wires the reconcile pipeline into a kube-runtime Controller that watches
//! RedisPairs, their pods, Services and claims, the Nodes their pods run on, the Secrets they
//! name, and the per-pair probers' triggers. Does I/O: Kubernetes API (watches, writes, Events), engines (through
//! `act` and `prober`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{Action as ControllerAction, Config as ControllerConfig};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use tracing::{info, warn};

use super::act::{
    apply_password, delete_lost_pod, delete_pod_for_rollout, grant_master_lease,
    run_engine_actions, ActionEffects, PausedOffset, PAUSE_TRUSTED_MS, SWITCHOVER_PAUSE_MS,
};
use super::apply::apply_pair;
use super::build::pod::pod_spec_hash;
use super::build::secret::{generate_password, password_mark};
use super::build::{build_pair_resources, GeneratedPasswords};
use super::decide::{
    action_ips, observation_of, passwords_to_apply, policy_of, record_of, routing_of,
    split_lease_before_routing,
};
use super::error::ReconcileError;
use super::metrics::{Metrics, PairSnapshot};
use super::observe::observe;
use super::prober::{now_ms, Probers};
use super::status::{
    build_invalid_status, build_status, newest_status, patch_status, CONDITION_READY,
};
use super::validate::{validate, validate_migration, validate_tls, Names};
use super::watch::{self, WatchBackoff};
use crate::api::constants::{LABEL_MANAGED_BY, LABEL_PAIR, MANAGED_BY};
use crate::api::RedisPair;
use crate::failover::{self, Phase};

/// A pass that has nothing left to do still runs this often (a safety net: the watches and
/// the prober trigger every pass that matters).
pub const RESYNC: Duration = Duration::from_secs(60);
/// The next pass of a failover in progress.
pub const AGAIN_NOW: Duration = Duration::from_millis(100);

/// What every reconcile pass shares.
pub struct Context {
    pub client: Client,
    /// One recorder for the whole operator: it folds repeated Events into a series instead
    /// of creating a new Event per pass.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub probers: Probers,
    /// Engine image when the spec names none (the operator's own image).
    pub default_image: Option<String>,
    /// The last status this operator wrote per pair (namespace/name), with its resource
    /// version: see `status::newest_status`.
    pub written_status:
        std::sync::Mutex<std::collections::HashMap<String, (u64, crate::api::RedisPairStatus)>>,
    /// Pauses this operator issued for planned switchovers, per pair (see
    /// `act::PausedOffset`): in memory only; after a restart the pause is issued again.
    pub paused: std::sync::Mutex<std::collections::HashMap<String, Vec<PausedOffset>>>,
    /// Bodies applied lately (see `apply::AppliedBodies`).
    pub applied: super::apply::AppliedBodies,
    /// True while this operator holds the leader Lease (always, without leader election). A
    /// standby runs the watches and the probers, so that the failure it takes over for is
    /// already measured (probes failing since...), but writes nothing: each pass stops after
    /// observing.
    pub leading: tokio::sync::watch::Receiver<bool>,
    /// When this controller started, on the operator's clock (`prober::now_ms`).
    pub started_ms: u64,
}

impl Context {
    fn remember_status(&self, key: String, written: &RedisPair) {
        let rv = written
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(rv), Some(status)) = (rv, written.status.clone()) {
            if let Ok(mut m) = self.written_status.lock() {
                m.insert(key, (rv, status));
            }
        }
    }
}

async fn publish(ctx: &Context, pair: &RedisPair, reason: &str, note: String, warning: bool) {
    let note: String = note.chars().take(1000).collect();
    let ev = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        action: event_action(&note),
        note: Some(note),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &pair.object_ref(&())).await {
        warn!(%e, reason, "could not publish an Event");
    }
}

/// The Event's action: "Reconcile/" and a hash of its note. kube-runtime's Recorder folds the
/// Events of one object with the same type, reason and action into one series for 6 minutes
/// and keeps the *first* Event's note: a second failover within 6 minutes showed the first
/// one's message ("... is master with term 2") with a count, and a Secret fixed from missing to
/// misspelt kept saying "does not exist". With the note in the key, only identical notes are
/// folded (a warning repeated every pass stays one Event with a count). `kubectl describe` and
/// `kubectl get events` do not show the action.
fn event_action(note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut h);
    format!("Reconcile/{:016x}", h.finish())
}

/// The object's uid (empty for one without: a test's object never stored), which the metrics
/// use to tell a deleted pair from one created again under its name.
fn pair_uid(pair: &RedisPair) -> String {
    pair.metadata.uid.clone().unwrap_or_default()
}

fn pair_key(pair: &RedisPair) -> String {
    format!(
        "{}/{}",
        pair.namespace().unwrap_or_default(),
        pair.name_any()
    )
}

/// One pass of the pipeline for one pair.
#[tracing::instrument(skip_all, fields(pair = %pair_key(&pair)))]
pub async fn reconcile(
    pair: Arc<RedisPair>,
    ctx: Arc<Context>,
) -> Result<ControllerAction, ReconcileError> {
    ctx.metrics.reconciles.inc();
    let started = std::time::Instant::now();
    let result = reconcile_pair(&pair, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(a) => Ok(a),
        Err(e) => {
            if *ctx.leading.borrow() {
                publish(&ctx, &pair, e.category(), e.to_string(), true).await;
            }
            Err(e)
        }
    }
}

/// One pass, as a pipeline that visits each stage once:
///
/// ```text
/// observe (API + probes) → validate (pure) → decide (pure: failover machine, status, routing,
/// objects) → record (the decision's intent, in status, before anything it implies) → apply
/// (objects; routing first) → act (pod deletions, Events, engine actions) → status
/// ```
///
/// Only `observe`, `record`, `apply`, `act` and `status` do I/O. A standby (leader election
/// on, Lease not held) stops after `observe`.
async fn reconcile_pair(
    pair: &RedisPair,
    ctx: &Context,
) -> Result<ControllerAction, ReconcileError> {
    let seen = observe_pass(pair, ctx).await?;
    let v = match validate(
        pair,
        seen.observed.password_secret.as_ref(),
        seen.observed.admin_secret.as_ref(),
        ctx.default_image.as_deref(),
    )
    .and_then(|mut v| {
        validate_tls(&mut v, seen.observed.tls_secret.as_ref())?;
        validate_migration(
            &mut v,
            pair,
            seen.previous.as_ref(),
            super::validate::SourceSecrets {
                password: seen.observed.source_secret.as_ref(),
                ca: seen.observed.source_ca_secret.as_ref(),
                client: seen.observed.source_client_secret.as_ref(),
            },
        )
        .map(|()| v)
    }) {
        Ok(v) => v,
        Err(_) if !*ctx.leading.borrow() => return Ok(ControllerAction::requeue(RESYNC)),
        Err(e) => return invalid_pass(pair, ctx, &seen, e).await,
    };
    ctx.probers.ensure(pair, v.engine_access());
    if !*ctx.leading.borrow() {
        // A standby stops here: its prober is running (warm for a takeover), and nothing is
        // written. Becoming leader reconciles every pair at once (`run`).
        return Ok(ControllerAction::requeue(RESYNC));
    }
    let mut seen = observe_engines(pair, ctx, seen);
    // The newest status known, not the one the watch delivered, says whether a master was
    // ever elected (the restore step is for the first one only).
    let mut v = v;
    v.restore_first_master &= seen
        .previous
        .as_ref()
        .is_none_or(|s| s.target_master.is_none() && s.ready_term.is_none());
    observe_source(pair, &v, &mut seen).await;
    // A rollback (`redispair.io/rollback`): decided before the failover machine, which it
    // bypasses while fencing and re-bootstraps while restoring.
    let rollback = super::rollback::plan(
        pair,
        seen.previous.as_ref().and_then(|s| s.rollback.as_ref()),
        &record_of(seen.previous.as_ref()),
        &seen.observed.pods,
        seen.observed.wall_now_ms,
    );
    if let Some(r) = &rollback.restore {
        v.restore_first_master = true;
        v.rollback_restore = Some(r.clone());
    }
    let plan = decide_pass(pair, &v, &seen, rollback);
    record_pass(ctx, &seen, &plan).await?;
    let applied = apply_pass(pair, ctx, &v, &seen, &plan).await?;
    let acted = act_pass(pair, ctx, &v, &seen, &plan).await;
    super::backups::run(
        &ctx.client,
        &pair.namespace().unwrap_or_default(),
        v.engine_access().as_ref(),
        plan.create_backup.as_ref(),
        &plan.backup_work,
        &seen.observed.backups,
    )
    .await;
    status_pass(pair, ctx, &v, &seen, &plan, applied, acted).await
}

/// What `observe` read: the pair's objects and, for the leader, the engines' state.
struct Seen {
    names: Names,
    key: String,
    /// The newest status this operator knows (see `status::newest_status`).
    previous: Option<crate::api::RedisPairStatus>,
    observed: super::observe::Observed,
    /// The operator's clock, read after the probe results (see `observe_engines`).
    now: u64,
}

/// observe (client): the pair's objects, and the newest status known.
async fn observe_pass(pair: &RedisPair, ctx: &Context) -> Result<Seen, ReconcileError> {
    let ns = pair.namespace().unwrap_or_default();
    let names = Names::new(pair);
    let key = format!("{ns}/{}", pair.name_any());
    let previous = {
        let written = ctx
            .written_status
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        newest_status(
            pair.status.as_ref(),
            pair.metadata.resource_version.as_deref(),
            written.as_ref(),
        )
    };
    let observed = observe(&ctx.client, &ns, &names)
        .await
        .map_err(ReconcileError::Observe)?;
    Ok(Seen {
        names,
        key,
        previous,
        observed,
        now: now_ms(),
    })
}

/// observe, the engines' half (no I/O here: the prober and the lease ledger did it): the
/// latest probe results, lease grants and switchover pauses.
fn observe_engines(pair: &RedisPair, ctx: &Context, mut seen: Seen) -> Seen {
    let observed = &mut seen.observed;
    observed.probes = ctx.probers.results(pair);
    // Taken after the probe results were read: an engine state they show (a promotion, which
    // ends the replica's lease grants to the old master) happened before `now`.
    let now = now_ms();
    observed.operator_started_ms = ctx.started_ms;
    for p in &seen.names.pods {
        if let Some(ms) = ctx.probers.leases.granted_ms(&seen.key, p, now) {
            observed.lease_grants.insert(p.clone(), ms);
        }
    }
    if let Ok(paused) = ctx.paused.lock() {
        for p in paused.get(&seen.key).into_iter().flatten() {
            // Trusted only while enough of the pause is left for a promotion decided now.
            if now < p.at_ms + SWITCHOVER_PAUSE_MS - PAUSE_TRUSTED_MS {
                observed
                    .paused_offsets
                    .insert(p.pod.clone(), (p.ip.clone(), p.offset));
            }
        }
    }
    seen.now = now;
    seen
}

/// observe, the migration source's half (docs/migration.md): its offset, read after pausing
/// its writes once a cutover is recorded. Nothing when no migration is under way.
async fn observe_source(pair: &RedisPair, v: &super::validate::ValidatedPair, seen: &mut Seen) {
    let Some(spec) = super::migrate::migrate_from(pair) else {
        return;
    };
    if !super::migrate::source_wanted(pair, seen.previous.as_ref()) {
        return;
    }
    let pause = super::migrate::pause_due(seen.previous.as_ref())
        .then(|| spec.pause_seconds.max(1) as u64 * 1000);
    let probe = super::migrate::probe_source(
        spec,
        v.source_password.as_deref(),
        v.source_tls.as_ref(),
        pause,
        super::prober::PROBE_TIMEOUT,
    )
    .await;
    if let Some(e) = &probe.error {
        warn!(error = %e, "migration source");
    }
    seen.observed.source = Some(probe);
}

/// An invalid spec is a condition and an Event, not a crash.
async fn invalid_pass(
    pair: &RedisPair,
    ctx: &Context,
    seen: &Seen,
    e: super::validate::ValidateError,
) -> Result<ControllerAction, ReconcileError> {
    let message = e.to_string();
    let already = seen.previous.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == CONDITION_READY && c.message == message)
    });
    if !already {
        publish(ctx, pair, e.category(), message.clone(), true).await;
    }
    ctx.metrics.error(e.category());
    ctx.metrics
        .set_phase(&pair_key(pair), &pair_uid(pair), Some("Failed"));
    let status = build_invalid_status(
        seen.previous.as_ref(),
        pair.meta().generation,
        message,
        seen.now,
    );
    patch_status(&pair_api(ctx, pair), &pair.name_any(), &status)
        .await
        .map_err(ReconcileError::Status)?;
    Ok(ControllerAction::await_change())
}

fn pair_api(ctx: &Context, pair: &RedisPair) -> Api<RedisPair> {
    Api::namespaced(ctx.client.clone(), &pair.namespace().unwrap_or_default())
}

/// What `decide` produced: everything the later stages carry out. Pure data.
struct Plan {
    /// The record as it was (to tell whether the decision changed it).
    record: failover::Record,
    obs: failover::Observation,
    d: failover::Decision,
    /// The status this pass leads to; it carries the new record.
    status: crate::api::RedisPairStatus,
    resources: super::build::PairResources,
    /// The lease grant that must reach the new master before the Service names it.
    lease_first: Vec<failover::Action>,
    /// Every other action, in order.
    later_actions: Vec<failover::Action>,
    /// The RedisPairBackup `spec.backup.schedule` creates this pass.
    create_backup: Option<crate::api::RedisPairBackup>,
    /// What to do about the backups in progress.
    backup_work: Vec<super::backup::BackupWork>,
    /// A rollback's decisions (`rollback::plan`).
    rollback: super::rollback::RollbackPlan,
    /// `status.rollback` changes this pass: written before acting (record_pass).
    rollback_changed: bool,
}

/// decide (pure): the failover machine, the status it leads to, the routing and the objects.
fn decide_pass(
    pair: &RedisPair,
    v: &super::validate::ValidatedPair,
    seen: &Seen,
    mut rollback: super::rollback::RollbackPlan,
) -> Plan {
    let record = record_of(seen.previous.as_ref());
    // Entering a rollback's Restoring phase: the machine starts from "no master decided"
    // (the difference from `record` makes record_pass write it before anything is built).
    let input = if rollback.reset_record {
        super::rollback::reset_record(&record)
    } else {
        record.clone()
    };
    let mut obs = observation_of(pair, &seen.names, &seen.observed, &pod_spec_hash(v));
    if v.restore_first_master && input.target_master.is_none() {
        // Recovery: only the pod whose data is being restored may be elected. The other
        // starts empty and answers at once; elected, it would make the restored one a
        // replica and wipe it. So it is out of the election, as a fenced pod is, however
        // long the restore takes.
        for m in obs.members.iter_mut() {
            if m.pod != seen.names.pods[0] {
                m.fenced = true;
            }
        }
    }
    let d = if rollback.fence_all {
        // A rollback fencing: the old history must take no more writes and nothing may be
        // elected or failed over while its pods go. The Service selects nothing; no lease is
        // granted (the pods are not serving masters any more: see `act_pass`).
        failover::Decision {
            record: input.clone(),
            actions: vec![failover::Action::SelectMaster(None)],
            phase: Phase::Creating,
            again_now: false,
            completed: None,
        }
    } else {
        failover::decide(&policy_of(&pair.spec), &input, &obs, seen.now)
    };
    super::rollback::complete(
        &mut rollback,
        &d.record,
        &seen.names.pods[0],
        seen.observed.wall_now_ms,
    );
    let mut status = build_status(
        seen.previous.as_ref(),
        &seen.names,
        pair.spec.replication.mode,
        pair.meta().generation,
        &d,
        &obs,
        &seen.observed,
        seen.now,
    );
    let rollback_changed =
        rollback.changed(seen.previous.as_ref().and_then(|s| s.rollback.as_ref()));
    status.rollback = rollback.status.clone();
    // Backups: the current master is asked for those in progress; the schedule may create one.
    let master = status.current_master.as_deref().and_then(|m| {
        let ip = seen.observed.probes.get(m)?.ip.clone();
        Some((m.to_string(), ip))
    });
    let backup_work = super::backup::plan_backups(
        v,
        &seen.observed.backups,
        master.as_ref().map(|(p, ip)| (p.as_str(), ip.as_str())),
    );
    let previous_backup = seen.previous.as_ref().and_then(|s| s.backup.clone());
    let mut last_schedule = previous_backup
        .as_ref()
        .and_then(|b| b.last_schedule_time.clone());
    let wall_now = i64::try_from(seen.observed.wall_now_ms).unwrap_or(i64::MAX);
    let create_backup = match (&v.schedule, pair.spec.backup.as_ref()) {
        (Some(schedule), Some(_)) => {
            let last_ms = last_schedule
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond());
            let created_ms = pair
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(wall_now, |t| t.0.as_millisecond());
            super::backup::schedule_due(schedule, last_ms, created_ms, wall_now).then(|| {
                last_schedule = jiff::Timestamp::from_millisecond(wall_now)
                    .ok()
                    .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string());
                super::backup::scheduled_backup(v, wall_now)
            })
        }
        _ => None,
    };
    // A rollback that completed this pass: a base backup of the restored history at once.
    let create_backup = create_backup.or_else(|| {
        let (reason, _, _) = rollback.event.as_ref()?;
        (*reason == "RollbackCompleted")
            .then_some(rollback.status.as_ref())
            .flatten()
            .map(|s| super::backup::rollback_backup(v, &s.id))
    });
    if pair.spec.backup.is_some() {
        let master_info = status
            .current_master
            .as_deref()
            .and_then(|m| seen.observed.probes.get(m)?.info.as_ref());
        status.backup = Some(super::backup::pair_status(
            master_info,
            &seen.names.pair,
            &seen.observed.backups,
            last_schedule,
        ));
    }
    // Backup credentials: checked every pass, reported beside the failover's conditions,
    // never stopping it.
    if seen.names.archive_secret.is_some() || seen.names.recovery_secret.is_some() {
        let check = super::validate::check_backup_credentials(v, &seen.observed.backup_secrets);
        let prev = seen
            .previous
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]);
        status
            .conditions
            .push(super::status::backup_credentials_condition(
                prev,
                &check,
                pair.meta().generation,
                seen.now,
            ));
    }
    // A TLS source: whether it is verified, while the migration runs (False is loud: a
    // Warning Event at once, see publish_condition_change).
    if let Some(t) = super::migrate::migrate_from_tls(&pair.spec)
        .filter(|_| super::migrate::source_wanted(pair, seen.previous.as_ref()))
    {
        let prev = seen
            .previous
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]);
        status
            .conditions
            .push(super::status::migration_source_verified_condition(
                prev,
                t,
                pair.meta().generation,
                seen.now,
            ));
    }
    // The restore step's outcome (bootstrap recovery or a rollback): a failure names the
    // object in the pair's status, not only in the init container's log.
    {
        let prev = seen
            .previous
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]);
        let first_pod = seen
            .names
            .pods
            .first()
            .and_then(|p| seen.observed.pods.get(p));
        if let Some(c) = super::status::restore_condition(
            prev,
            v.restore_first_master,
            first_pod,
            pair.meta().generation,
            seen.now,
        ) {
            status.conditions.push(c);
        }
    }
    // build: the read-write Service's selector carries the routing decision, so fencing
    // (selector → nothing) is applied before any engine action.
    let routing = routing_of(&d, &obs);
    let passwords = {
        let mut rng = rand::thread_rng();
        GeneratedPasswords {
            password: generate_password(&mut rng),
            admin_password: generate_password(&mut rng),
        }
    };
    let mut resources = build_pair_resources(v, &routing, &passwords);
    if rollback.fence_all {
        // No pod is created while a rollback fences: a pod recreated now would start on its
        // volume's newer data without the restore step (which only the Restoring phase,
        // entered once both old pods are gone, builds into the first pod).
        resources.pods.clear();
    }
    // The new master gets its write lease before the Service names it: the other way round,
    // the first clients routed to it would be refused (READONLY / MASTERDOWN: a promoted
    // engine accepts nothing until its first grant) until the engine actions ran.
    let (lease_first, later_actions) = split_lease_before_routing(&d.actions, &routing);
    Plan {
        record,
        obs,
        d,
        status,
        resources,
        lease_first,
        later_actions,
        create_backup,
        backup_work,
        rollback,
        rollback_changed,
    }
}

/// record (client): intent before action. The new record is in status before anything it
/// implies is done, so a restarted operator resumes from it. The prober stops renewing the
/// master's lease before a failover is recorded (an async promotion waits for that lease from
/// its last grant), and resumes once none is.
async fn record_pass(ctx: &Context, seen: &Seen, plan: &Plan) -> Result<(), ReconcileError> {
    ctx.probers.leases.hold(
        &seen.key,
        plan.d.record.failover.is_some()
            || plan.record.failover.is_some()
            || plan.rollback.fence_all,
    );
    if plan.d.record != plan.record || plan.rollback_changed {
        let (ns, name) = seen.key.split_once('/').unwrap_or_default();
        let api: Api<RedisPair> = Api::namespaced(ctx.client.clone(), ns);
        let written = patch_status(&api, name, &plan.status)
            .await
            .map_err(ReconcileError::Status)?;
        ctx.remember_status(seen.key.clone(), &written);
    }
    Ok(())
}

/// apply (client): the new master's lease grant (if routing names it now), then every object.
/// A failed routing write (the fence of a failover) stops the pass before any engine action;
/// any other object that could not be written is returned, to be reported after the engine
/// actions, so that a failover never waits on it.
async fn apply_pass(
    pair: &RedisPair,
    ctx: &Context,
    v: &super::validate::ValidatedPair,
    seen: &Seen,
    plan: &Plan,
) -> Result<Vec<ReconcileError>, ReconcileError> {
    let ips = action_ips(&seen.observed);
    if let (false, Some(pw)) = (plan.lease_first.is_empty(), v.engine_access()) {
        let mut effects = ActionEffects::default();
        if let Err(e) = run_engine_actions(
            &ctx.client,
            pair,
            &seen.key,
            &plan.lease_first,
            &ips,
            &pw,
            v.source_password.as_deref(),
            &ctx.probers.leases,
            &mut effects,
        )
        .await
        {
            // Not fatal for this pass: the Service switch still goes ahead (the grant is
            // repeated in every pass until the Service names the new master).
            warn!(%e, "granting the new master its lease before routing to it");
        }
    }
    let ns = pair.namespace().unwrap_or_default();
    let errors = apply_pair(
        &ctx.client,
        &ns,
        &plan.resources,
        &seen.observed,
        &ctx.applied,
    )
    .await;
    match errors.routing {
        Some(e) => Err(e),
        None => Ok(errors.others),
    }
}

/// What `act` did that `status` reports.
struct Acted {
    /// Objects that could not be deleted (reported with the apply errors).
    api_errors: Vec<ReconcileError>,
    engine: Result<(), super::engine_client::EngineError>,
}

/// act (client, engines): pod deletions the machine recorded (repairs, rollout), Events, then
/// the engine actions and the serving master's lease.
async fn act_pass(
    pair: &RedisPair,
    ctx: &Context,
    v: &super::validate::ValidatedPair,
    seen: &Seen,
    plan: &Plan,
) -> Acted {
    let ns = pair.namespace().unwrap_or_default();
    let d = &plan.d;
    let mut api_errors = Vec::new();
    // A rollback: its Event, then the old pods deleted (by uid, at once: their data is
    // discarded either way), once its phase is recorded.
    if let Some((reason, message, warning)) = &plan.rollback.event {
        info!(reason, %message, "rollback");
        publish(ctx, pair, reason, message.clone(), *warning).await;
    }
    for (pod, uid) in &plan.rollback.delete {
        info!(%pod, "rollback: deleting the pod");
        if let Err(source) = delete_lost_pod(&ctx.client, &ns, pod, Some(uid), None).await {
            api_errors.push(ReconcileError::Apply {
                kind: "Pod",
                name: pod.clone(),
                source,
            });
        }
    }
    for a in &d.actions {
        match a {
            // Repairs (`Record::repair`): a pod lost with its node or evicted is force-deleted
            // (with its claim on local storage); the next pass recreates it, and the machine
            // demotes the newcomer into a replica.
            failover::Action::DeleteLostPod {
                pod,
                uid,
                delete_claim,
            } => {
                let claim = delete_claim.then(|| seen.names.pvc(pod));
                if let Some(c) = &claim {
                    ctx.applied.forget_object("PersistentVolumeClaim", &ns, c);
                }
                if let Err(source) =
                    delete_lost_pod(&ctx.client, &ns, pod, uid.as_deref(), claim.as_deref()).await
                {
                    api_errors.push(ReconcileError::Apply {
                        kind: "Pod",
                        name: pod.clone(),
                        source,
                    });
                }
            }
            // Rollout: delete the outdated replica pod; the next pass recreates it from the
            // current spec.
            failover::Action::ReplacePod { pod } => {
                let Some(uid) = seen
                    .observed
                    .pods
                    .get(pod)
                    .and_then(|p| p.metadata.uid.clone())
                else {
                    continue;
                };
                info!(%pod, "rollout: deleting the pod to recreate it from the current spec");
                if let Err(source) = delete_pod_for_rollout(&ctx.client, &ns, pod, &uid).await {
                    api_errors.push(ReconcileError::Apply {
                        kind: "Pod",
                        name: pod.clone(),
                        source,
                    });
                }
            }
            failover::Action::Event {
                reason,
                message,
                warning,
            } => {
                info!(reason, %message, "event");
                publish(ctx, pair, reason, message.clone(), *warning).await;
            }
            _ => {}
        }
    }
    let Some(pw) = &v.engine_access() else {
        return Acted {
            api_errors,
            engine: Ok(()),
        };
    };
    let ips = action_ips(&seen.observed);
    let mut effects = ActionEffects::default();
    let r = run_engine_actions(
        &ctx.client,
        pair,
        &seen.key,
        &plan.later_actions,
        &ips,
        pw,
        v.source_password.as_deref(),
        &ctx.probers.leases,
        &mut effects,
    )
    .await;
    if let Ok(mut paused) = ctx.paused.lock() {
        let entry = paused.entry(seen.key.clone()).or_default();
        if d.record.failover.is_none() {
            entry.clear();
        }
        for p in effects.paused {
            entry.retain(|x| x.pod != p.pod);
            entry.push(p);
        }
    }
    for (pod, ip, info) in effects.probed {
        ctx.probers.record(pair, &pod, &ip, info);
    }
    // The master is serving in this term and no failover is recorded: it may write.
    let serving = d.record.failover.is_none()
        && !plan.rollback.fence_all
        && d.record
            .serving_master(&plan.obs)
            .is_some_and(|m| !m.fenced);
    let l = match (serving, d.record.target_master.as_ref()) {
        (true, Some(m)) => match ips.get(m) {
            Some(ip) => grant_master_lease(&ctx.probers.leases, &seen.key, m, ip, pw).await,
            None => Ok(()),
        },
        _ => Ok(()),
    };
    // Password rotation: the password Secret changed (its watch triggered this pass), or an
    // engine restarted since it was last told. Not during a failover, whose passes must stay
    // short: the first pass after it does it.
    if let (None, Some(password)) = (d.record.failover.as_ref(), v.password.as_ref()) {
        let mark = password_mark(v, password);
        for update in passwords_to_apply(&seen.observed, &mark) {
            match apply_password(&ctx.client, &ns, &update, pw, password).await {
                Ok(()) => {
                    info!(pod = %update.pod, version = %mark, "password applied");
                    let note = format!(
                        "{}: the password of Secret {} (version {mark}) is in force",
                        update.pod, seen.names.password_secret
                    );
                    publish(ctx, pair, "PasswordApplied", note, false).await;
                }
                Err(e) => api_errors.push(e),
            }
        }
    }
    Acted {
        api_errors,
        engine: r.and(l),
    }
}

/// status (client): metrics, the phase change Event, the status write (when the record did
/// not already carry it), then what could not be done, and when to come back.
async fn status_pass(
    pair: &RedisPair,
    ctx: &Context,
    v: &super::validate::ValidatedPair,
    seen: &Seen,
    plan: &Plan,
    apply_errors: Vec<ReconcileError>,
    acted: Acted,
) -> Result<ControllerAction, ReconcileError> {
    let d = &plan.d;
    if let Some((from, to, _, ms)) = &d.completed {
        ctx.metrics.failover_completed(*ms);
        ctx.metrics
            .pair_failover_completed(&seen.key, &pair_uid(pair), *ms);
        info!(%from, %to, ms, "failover completed");
    }
    let old_phase = seen.previous.as_ref().and_then(|s| s.phase.clone());
    if old_phase.as_deref() != Some(d.phase.as_str()) {
        publish(
            ctx,
            pair,
            "PhaseChanged",
            format!(
                "phase {} → {}",
                old_phase.as_deref().unwrap_or("none"),
                d.phase.as_str()
            ),
            matches!(d.phase, Phase::Failed | Phase::Degraded),
        )
        .await;
    }
    publish_condition_change(
        ctx,
        pair,
        seen,
        plan,
        super::status::CONDITION_BACKUP_CREDENTIALS,
    )
    .await;
    publish_condition_change(
        ctx,
        pair,
        seen,
        plan,
        super::status::CONDITION_MIGRATION_SOURCE_VERIFIED,
    )
    .await;
    publish_condition_change(ctx, pair, seen, plan, super::status::CONDITION_RESTORE).await;
    if seen.previous.as_ref() != Some(&plan.status)
        && d.record == plan.record
        && !plan.rollback_changed
    {
        let written = patch_status(&pair_api(ctx, pair), &pair.name_any(), &plan.status)
            .await
            .map_err(ReconcileError::Status)?;
        ctx.remember_status(seen.key.clone(), &written);
    }
    ctx.metrics
        .set_phase(&pair_key(pair), &pair_uid(pair), Some(d.phase.as_str()));
    ctx.metrics.set_pair(
        &seen.key,
        &pair_uid(pair),
        PairSnapshot {
            phase: d.phase.as_str().to_string(),
            term: plan.status.term,
            lag_bytes: plan.status.replication.as_ref().map_or(0, |r| r.lag_bytes),
            master: plan.status.current_master.clone(),
            replica: plan.status.replica.clone(),
        },
    );
    acted.engine.map_err(ReconcileError::Engine)?;
    // Objects that could not be written: reported now (Event, metrics), once the failover
    // steps of this pass are done. Not through the error policy: its back-off (2 s) would slow
    // a failover in progress, which advances a step per pass.
    let deferred: Vec<ReconcileError> = apply_errors.into_iter().chain(acted.api_errors).collect();
    for e in &deferred {
        warn!(%e, category = e.category(), "could not apply");
        ctx.metrics.error(e.category());
        publish(ctx, pair, e.category(), e.to_string(), true).await;
    }
    let retry = deferred
        .iter()
        .filter_map(ReconcileError::requeue_after)
        .min();
    if let (Some(retry), false) = (retry, d.again_now) {
        return Ok(ControllerAction::requeue(retry));
    }
    Ok(if d.again_now {
        ControllerAction::requeue(AGAIN_NOW)
    } else if v.admin_password.is_none()
        || matches!(
            d.phase,
            Phase::Creating | Phase::Upgrading | Phase::Migrating
        )
    {
        // Waiting for the generated Secret to be readable, the engines to start, or a
        // replaced pod to come back in sync (the pod watch and the prober trigger most passes;
        // this is the floor).
        ControllerAction::requeue(Duration::from_secs(1))
    } else {
        ControllerAction::requeue(RESYNC)
    })
}

/// The Events of a condition that reports a problem outside the failover and is there only
/// when it matters (`BackupCredentials`, `Restore`, `MigrationSourceVerified`): a Warning with
/// its message (the Secret and key, the archive object, why the source is not verified) when
/// it turns False or its message changes, a Normal one when it turns True after having been
/// False or unknown. Its reason is the condition's.
async fn publish_condition_change(
    ctx: &Context,
    pair: &RedisPair,
    seen: &Seen,
    plan: &Plan,
    type_: &str,
) {
    let find = |conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        conds.iter().find(|c| c.type_ == type_).cloned()
    };
    let Some(now) = find(&plan.status.conditions) else {
        return;
    };
    let before = seen.previous.as_ref().and_then(|s| find(&s.conditions));
    let unchanged = before
        .as_ref()
        .is_some_and(|b| b.status == now.status && b.message == now.message);
    if unchanged {
        return;
    }
    let invalid = now.status == "False";
    if invalid {
        warn!(message = %now.message, condition = type_, "condition turned False");
        ctx.metrics.error(&now.reason);
    } else if before.is_none() {
        // Valid from the start: nothing worth an Event.
        return;
    }
    publish(ctx, pair, &now.reason, now.message.clone(), invalid).await;
}

/// Requeue by error kind (see [`ReconcileError::requeue_after`]).
pub fn error_policy(
    _pair: Arc<RedisPair>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> ControllerAction {
    ctx.metrics.error(error.category());
    warn!(%error, category = error.category(), "reconcile failed");
    match error.requeue_after() {
        Some(d) => ControllerAction::requeue(d),
        None => ControllerAction::await_change(),
    }
}

/// Settings of [`run`].
pub struct RunConfig {
    /// Namespace to watch (None: all).
    pub namespace: Option<String>,
    pub default_image: Option<String>,
    pub instance: String,
    pub metrics: Arc<Metrics>,
    /// Leadership (see [`Context::leading`]); `watch::channel(true).1` without election.
    pub leading: tokio::sync::watch::Receiver<bool>,
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The pairs (among `pairs`) that name the Secret `namespace/name`: as their password Secret
/// (spec.auth.passwordSecret or `<pair>-password`), their admin Secret (`<pair>-admin`), their
/// TLS Secret, a migration source's Secrets (password, CA, client certificate: one created
/// after the pair starts the migration at once), or a backup credentials Secret (`spec.backup`, `spec.bootstrap.recovery`: a
/// fixed one clears `BackupCredentials` at once).
pub fn pairs_naming_secret(
    pairs: &[Arc<RedisPair>],
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<RedisPair>> {
    pairs
        .iter()
        .filter(|p| p.namespace().as_deref() == namespace)
        .filter(|p| {
            let n = Names::new(p);
            n.password_secret == name
                || n.admin_secret == name
                || n.tls_secret.as_deref() == Some(name)
                || n.archive_secret.as_deref() == Some(name)
                || n.recovery_secret.as_deref() == Some(name)
                || n.source_secret.as_ref().is_some_and(|(s, _)| s == name)
                || n.source_ca_secret.as_deref() == Some(name)
                || n.source_client_secret.as_deref() == Some(name)
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// Run the controller until a shutdown signal.
pub async fn run(client: Client, cfg: RunConfig) {
    // A lease wait after a restart counts from here (see `Observation::operator_started_ms`).
    let started_ms = now_ms();
    let ns = cfg.namespace.as_deref();
    let managed = format!("{LABEL_MANAGED_BY}={MANAGED_BY}");
    let pairs: Api<RedisPair> = api_for(&client, ns);
    let pods: Api<Pod> = api_for(&client, ns);

    // Our own view of the engine pods: the prober reads their IPs, the node mapper finds
    // which pairs run on a node.
    let (pod_store, pod_writer) = reflector::store();
    let pod_reflector = reflector::reflector(
        pod_writer,
        watcher(pods.clone(), watcher::Config::default().labels(&managed)),
    )
    .backoff(WatchBackoff::default())
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    tokio::spawn(pod_reflector);

    let (trigger_tx, trigger_rx) = futures::channel::mpsc::unbounded();
    // Every watch is built by `watch` (its own short backoff, errors dropped before the
    // merge): kube-runtime's defaults pause the probers' triggers on any watch error.
    let (pair_store, pair_writer) = reflector::store();
    let pair_watch = watch::resilient(
        reflector::reflector(
            pair_writer,
            watcher(pairs, watcher::Config::default().any_semantic()),
        )
        .applied_objects(),
        "redispairs",
    );
    let controller = Controller::for_stream(pair_watch, pair_store);
    let probers = Probers::new(
        trigger_tx,
        pod_store.clone(),
        controller.store(),
        cfg.metrics.clone(),
    );
    // Becoming leader: grant leases from now on, and reconcile every pair at once (a pair
    // whose master failed while this operator was a standby is failed over in this pass,
    // its probes' history already counted).
    probers.leases.set_standby(!*cfg.leading.borrow());
    let became_leader = futures::stream::unfold(
        (cfg.leading.clone(), probers.leases.clone()),
        |(mut rx, leases)| async move {
            loop {
                rx.changed().await.ok()?;
                let leading = *rx.borrow_and_update();
                leases.set_standby(!leading);
                if leading {
                    return Some(((), (rx, leases)));
                }
            }
        },
    );
    let nodes_pods = pod_store.clone();
    // A node turning NotReady (or any node change) triggers exactly the pairs with a pod on
    // it: no waiting for the node controller to evict pods.
    let node_mapper = move |node: Node| {
        let node_name = node.name_any();
        nodes_pods
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&node_name))
            .filter_map(|p| {
                let pair = p.labels().get(LABEL_PAIR)?.clone();
                Some(ObjectRef::<RedisPair>::new(&pair).within(&p.namespace()?))
            })
            .collect::<Vec<_>>()
    };
    // A Secret a pair names changed, appeared or went away: that pair is reconciled at once
    // (a fixed Secret clears InvalidSpec, a changed password is rotated into the engines).
    // A user's password Secret carries no label of ours, so every Secret of the watched
    // namespace(s) is watched, metadata only: their data never reaches the operator this
    // way (the pass reads the two Secrets it needs).
    let pair_store = controller.store();
    let secret_mapper = move |s: PartialObjectMeta<Secret>| {
        pairs_naming_secret(&pair_store.state(), s.namespace().as_deref(), &s.name_any())
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGED_BY.to_string(),
                instance: Some(cfg.instance.clone()),
            },
        ),
        client: client.clone(),
        metrics: cfg.metrics.clone(),
        probers,
        default_image: cfg.default_image.clone(),
        written_status: Default::default(),
        paused: Default::default(),
        applied: Default::default(),
        leading: cfg.leading.clone(),
        started_ms,
    });
    let labelled = || watcher::Config::default().labels(&managed);
    controller
        .owns_stream(watch::touched(pods, labelled(), "pods"))
        .owns_stream(watch::touched(
            api_for::<Service>(&client, ns),
            labelled(),
            "services",
        ))
        .owns_stream(watch::touched(
            api_for::<PersistentVolumeClaim>(&client, ns),
            labelled(),
            "persistentvolumeclaims",
        ))
        .watches_stream(
            watch::touched(
                Api::<Node>::all(client.clone()),
                watcher::Config::default(),
                "nodes",
            ),
            node_mapper,
        )
        .watches_stream(
            watch::touched(
                api_for::<PartialObjectMeta<Secret>>(&client, ns),
                watcher::Config::default(),
                "secrets",
            ),
            secret_mapper,
        )
        .watches(
            api_for::<crate::api::RedisPairBackup>(&client, ns),
            watcher::Config::default(),
            |b: crate::api::RedisPairBackup| {
                // A backup triggers the pair it names (an on-demand one starts at once).
                b.namespace()
                    .map(|ns| ObjectRef::<RedisPair>::new(&b.spec.pair).within(&ns))
            },
        )
        .reconcile_on(trigger_rx)
        .reconcile_all_on(became_leader)
        .with_config(ControllerConfig::default().concurrency(8))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(%e, "controller");
            }
            futures::future::ready(())
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::validate::tests::contract_pair;

    #[test]
    fn events_fold_only_identical_notes() {
        let a = event_action("b is master with term 2 (714 ms)");
        assert_eq!(a, event_action("b is master with term 2 (714 ms)"));
        assert_ne!(a, event_action("a is master with term 3 (895 ms)"));
        assert!(a.starts_with("Reconcile/") && a.len() <= 128, "{a}");
    }

    #[test]
    fn a_secret_triggers_exactly_the_pairs_that_name_it() {
        let cache = contract_pair(); // shop/cache, passwordSecret cache-password
        let mut other = contract_pair();
        other.metadata.name = Some("sessions".into());
        other.spec.auth.password_secret = None; // sessions-password
        let mut elsewhere = contract_pair();
        elsewhere.metadata.namespace = Some("other".into());
        let pairs: Vec<Arc<RedisPair>> = [cache, other, elsewhere]
            .into_iter()
            .map(Arc::new)
            .collect();
        let names = |refs: Vec<ObjectRef<RedisPair>>| {
            refs.into_iter()
                .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(pairs_naming_secret(&pairs, Some("shop"), "cache-password")),
            ["shop/cache"]
        );
        assert_eq!(
            names(pairs_naming_secret(&pairs, Some("shop"), "cache-admin")),
            ["shop/cache"]
        );
        assert_eq!(
            names(pairs_naming_secret(
                &pairs,
                Some("shop"),
                "sessions-password"
            )),
            ["shop/sessions"]
        );
        assert_eq!(
            names(pairs_naming_secret(&pairs, Some("other"), "cache-password")),
            ["other/cache"]
        );
        assert!(pairs_naming_secret(&pairs, Some("shop"), "unrelated").is_empty());
        // A backup's credentials Secret.
        let mut backed_up = contract_pair();
        backed_up.metadata.name = Some("archived".into());
        backed_up.spec.backup = Some(
            serde_json::from_value(serde_json::json!({"destination": {
                "destinationPath": "s3://b/p", "credentialsSecret": {"name": "s3-creds"}}}))
            .unwrap(),
        );
        let pairs = [Arc::new(backed_up)];
        assert_eq!(
            names(pairs_naming_secret(&pairs, Some("shop"), "s3-creds")),
            ["shop/archived"]
        );
        // A migration source's password, CA and client certificate Secrets.
        let mut migrating = contract_pair();
        migrating.metadata.name = Some("moving".into());
        migrating.spec.bootstrap = Some(
            serde_json::from_value(serde_json::json!({"migrateFrom": {
                "host": "old", "passwordSecret": {"name": "old-pw"},
                "tls": {"caSecret": "old-ca", "clientCertSecret": "old-client"}}}))
            .unwrap(),
        );
        let pairs = [Arc::new(migrating)];
        for secret in ["old-pw", "old-ca", "old-client"] {
            assert_eq!(
                names(pairs_naming_secret(&pairs, Some("shop"), secret)),
                ["shop/moving"],
                "{secret}"
            );
        }
    }
}
