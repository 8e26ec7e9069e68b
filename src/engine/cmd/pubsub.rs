//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB. Pure (on the
//! locked state; messages are handed to each subscriber's push channel, which its connection
//! drains).
//!
//! (Un)subscribe commands answer one frame per channel, so they return those frames already
//! encoded for the client's protocol (`Reply::Raw`): RESP2 arrays, RESP3 push frames. Shard
//! channels (SSUBSCRIBE/SPUBLISH) are a namespace of their own, as in a non-cluster Redis 7.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::client::{PushSender, Pushed};
use crate::engine::glob::glob_match;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

const SUB: u32 = PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBE_CONTEXT;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, SUB, (0, 0, 0), "pubsub", subscribe),
    CommandSpec::new("unsubscribe", -1, SUB, (0, 0, 0), "pubsub", unsubscribe),
    CommandSpec::new("psubscribe", -2, SUB, (0, 0, 0), "pubsub", psubscribe),
    CommandSpec::new("punsubscribe", -1, SUB, (0, 0, 0), "pubsub", punsubscribe),
    CommandSpec::new("ssubscribe", -2, SUB, (1, -1, 1), "pubsub", ssubscribe),
    CommandSpec::new("sunsubscribe", -1, SUB, (1, -1, 1), "pubsub", sunsubscribe),
    CommandSpec::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (0, 0, 0),
        "pubsub",
        publish,
    ),
    CommandSpec::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        (1, 1, 1),
        "pubsub",
        spublish,
    ),
    CommandSpec::new("pubsub", -2, 0, (0, 0, 0), "pubsub", pubsub_help).with_subcommands(&[
        CommandSpec::new(
            "channels",
            -2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            "pubsub",
            pubsub_channels,
        ),
        CommandSpec::new(
            "numsub",
            -2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            "pubsub",
            pubsub_numsub,
        ),
        CommandSpec::new(
            "numpat",
            2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            "pubsub",
            pubsub_numpat,
        ),
        CommandSpec::new(
            "shardchannels",
            -2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            "pubsub",
            pubsub_shardchannels,
        ),
        CommandSpec::new(
            "shardnumsub",
            -2,
            PUBSUB | LOADING | STALE,
            (0, 0, 0),
            "pubsub",
            pubsub_shardnumsub,
        ),
        CommandSpec::new("help", 2, LOADING | STALE, (0, 0, 0), "pubsub", pubsub_help),
    ]),
];

/// Which subscription namespace a command works on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn sub_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }
    fn unsub_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

type Registry = HashMap<Bytes, HashMap<u64, PushSender>>;

fn registry<'s>(ctx: &'s mut Ctx<'_>, kind: Kind) -> &'s mut Registry {
    match kind {
        Kind::Channel => &mut ctx.state.pubsub.channels,
        Kind::Pattern => &mut ctx.state.pubsub.patterns,
        Kind::Shard => &mut ctx.state.pubsub.shard_channels,
    }
}

/// The client's own set of names for `kind`.
fn client_set<'s>(ctx: &'s mut Ctx<'_>, kind: Kind) -> &'s mut std::collections::HashSet<Bytes> {
    match kind {
        Kind::Channel => &mut ctx.client.channels,
        Kind::Pattern => &mut ctx.client.patterns,
        Kind::Shard => &mut ctx.client.shard_channels,
    }
}

/// The count Redis puts in (un)subscribe confirmations: channels + patterns for the classic
/// commands, shard channels alone for the shard ones.
fn confirmation_count(ctx: &Ctx<'_>, kind: Kind) -> i64 {
    match kind {
        Kind::Shard => ctx.client.shard_channels.len() as i64,
        _ => (ctx.client.channels.len() + ctx.client.patterns.len()) as i64,
    }
}

fn frame(word: &'static [u8], name: Option<Bytes>, count: i64) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(word)),
        name.map(Reply::Bulk).unwrap_or(Reply::Nil),
        Reply::Int(count),
    ])
}

fn subscribe_generic(ctx: &mut Ctx<'_>, a: &[Arg], kind: Kind) -> Reply {
    ctx.client.reply_is_push = true;
    let mut out = BytesMut::new();
    let proto = ctx.client.proto;
    for name in &a[1..] {
        let name = name.to_bytes();
        if client_set(ctx, kind).insert(name.clone()) {
            if let Some(tx) = ctx.client.push.clone() {
                ctx.client.push_handed_out = true;
                let id = ctx.client.id;
                registry(ctx, kind)
                    .entry(name.clone())
                    .or_default()
                    .insert(id, tx);
            }
        }
        let count = confirmation_count(ctx, kind);
        frame(kind.sub_word(), Some(name.clone()), count).encode(proto, &mut out);
    }
    Reply::Raw(out.freeze())
}

/// Remove the client's subscription to `name`; true if it had one.
fn drop_subscription(ctx: &mut Ctx<'_>, kind: Kind, name: &[u8]) -> bool {
    if !client_set(ctx, kind).remove(name) {
        return false;
    }
    let id = ctx.client.id;
    let reg = registry(ctx, kind);
    if let Some(subs) = reg.get_mut(name) {
        subs.remove(&id);
        if subs.is_empty() {
            reg.remove(name);
        }
    }
    true
}

fn unsubscribe_generic(ctx: &mut Ctx<'_>, a: &[Arg], kind: Kind) -> Reply {
    ctx.client.reply_is_push = true;
    let names: Vec<Bytes> = if a.len() > 1 {
        a[1..].iter().map(Arg::to_bytes).collect()
    } else {
        client_set(ctx, kind).iter().cloned().collect()
    };
    let proto = ctx.client.proto;
    let mut out = BytesMut::new();
    if names.is_empty() {
        // Nothing to leave: one confirmation with a nil name, as Redis answers.
        let count = confirmation_count(ctx, kind);
        frame(kind.unsub_word(), None, count).encode(proto, &mut out);
    }
    for name in names {
        drop_subscription(ctx, kind, &name);
        let count = confirmation_count(ctx, kind);
        frame(kind.unsub_word(), Some(name), count).encode(proto, &mut out);
    }
    Reply::Raw(out.freeze())
}

fn subscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    subscribe_generic(ctx, a, Kind::Channel)
}
fn unsubscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    unsubscribe_generic(ctx, a, Kind::Channel)
}
fn psubscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    subscribe_generic(ctx, a, Kind::Pattern)
}
fn punsubscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    unsubscribe_generic(ctx, a, Kind::Pattern)
}
fn ssubscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    subscribe_generic(ctx, a, Kind::Shard)
}
fn sunsubscribe(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    unsubscribe_generic(ctx, a, Kind::Shard)
}

/// Deliver `message` on `channel` to channel subscribers (and pattern subscribers unless it is
/// a shard channel); the number of deliveries.
fn deliver(ctx: &mut Ctx<'_>, channel: &Bytes, message: &Bytes, shard: bool) -> i64 {
    deliver_to(ctx.state, ctx.now_ms, channel, message, shard)
}

/// [`deliver`] on the state itself (keyspace notifications publish from outside a command).
pub fn deliver_to(
    state: &mut crate::engine::state::EngineState,
    now: i64,
    channel: &Bytes,
    message: &Bytes,
    shard: bool,
) -> i64 {
    let pubsub = &state.pubsub;
    // Every subscriber's output buffer is bounded by the pubsub class limit: one that does not
    // read is disconnected when it breaks the limit, instead of growing the engine for ever.
    let limit = state.config.settings.output_limits.pubsub;
    let mut receivers = 0;
    let mut disconnected = 0;
    let mut count = |r: Pushed| {
        if r == Pushed::LimitReached {
            disconnected += 1;
        }
    };
    let (subs, word): (&Registry, &'static [u8]) = if shard {
        (&pubsub.shard_channels, b"smessage")
    } else {
        (&pubsub.channels, b"message")
    };
    if let Some(clients) = subs.get(channel) {
        for tx in clients.values() {
            let msg = Reply::Push(vec![
                Reply::Bulk(Bytes::from_static(word)),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ]);
            count(tx.push(msg, limit, now));
            receivers += 1;
        }
    }
    if !shard {
        for (pattern, clients) in &pubsub.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            for tx in clients.values() {
                let msg = Reply::Push(vec![
                    Reply::Bulk(Bytes::from_static(b"pmessage")),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ]);
                count(tx.push(msg, limit, now));
                receivers += 1;
            }
        }
    }
    state.stats.pubsub_messages += 1;
    state.stats.client_output_buffer_limit_disconnections += disconnected;
    receivers
}

fn publish(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::Int(deliver(ctx, &a[1].to_bytes(), &a[2].to_bytes(), false))
}

fn spublish(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    Reply::Int(deliver(ctx, &a[1].to_bytes(), &a[2].to_bytes(), true))
}

fn active_names(reg: &Registry, pattern: Option<&Arg>) -> Reply {
    Reply::Array(
        reg.keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .map(|c| Reply::Bulk(c.clone()))
            .collect(),
    )
}

fn subscriber_counts(reg: &Registry, names: &[Arg]) -> Reply {
    let mut out = Vec::with_capacity(names.len() * 2);
    for n in names {
        out.push(Reply::Bulk(n.to_bytes()));
        out.push(Reply::Int(reg.get(&n[..]).map_or(0, |s| s.len()) as i64));
    }
    Reply::Array(out)
}

fn pubsub_channels(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return Reply::err_static(
            "ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.",
        );
    }
    active_names(&ctx.state.pubsub.channels, a.get(2))
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    if a.len() > 3 {
        return Reply::err_static(
            "ERR unknown subcommand or wrong number of arguments for 'shardchannels'. Try PUBSUB HELP.",
        );
    }
    active_names(&ctx.state.pubsub.shard_channels, a.get(2))
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    subscriber_counts(&ctx.state.pubsub.channels, &a[2..])
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    subscriber_counts(&ctx.state.pubsub.shard_channels, &a[2..])
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    Reply::Int(ctx.state.pubsub.patterns.len() as i64)
}

fn pubsub_help(_ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(
        lines
            .iter()
            .map(|l| Reply::Status(Bytes::from_static(l.as_bytes())))
            .collect(),
    )
}

/// Drop every subscription of the client (RESET, and anything else that must leave pub/sub
/// silently: no confirmations are produced).
pub fn drop_all_subscriptions(ctx: &mut Ctx<'_>) {
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        let names: Vec<Bytes> = client_set(ctx, kind).iter().cloned().collect();
        for name in names {
            drop_subscription(ctx, kind, &name);
        }
    }
}
