//! ACL users as Redis 7.0 has them: passwords (SHA-256), on/off, command rules (categories,
//! commands, subcommands, first arguments), key patterns with read/write flags, channel
//! patterns and selectors; the checks a command passes before it runs; ACL LOG; the ACL file's
//! text. Pure (the ACL file is read and written by the commands in `cmd::acl`).
//!
//! A user's command permissions are a bitmap over the engine's command table (subcommands
//! included) plus the rules they were built from. Rules are kept as Redis keeps them
//! (`ACLUpdateCommandRules`): a new rule removes the earlier rules it overrides and is recorded
//! only when the remaining rules do not already produce the same bitmap, so ACL GETUSER and
//! ACL LIST describe a user as Redis would.

pub mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use crate::engine::cmd::{self, flags, CommandSpec};
use crate::engine::glob::glob_match;
use crate::engine::protocol::arg::Arg;

pub use table::CATEGORIES;

/// One command or subcommand of the engine as the ACL sees it.
struct CmdInfo {
    full: &'static str,
    cats: u32,
    subs: Vec<usize>,
    /// AUTH, HELLO...: allowed to every user (Redis skips the command check for them).
    no_auth: bool,
    spec: &'static CommandSpec,
}

struct Universe {
    cmds: Vec<CmdInfo>,
    by_name: HashMap<&'static str, usize>,
    /// `&CommandSpec` address → index: the check looks a spec up without building its name.
    by_spec: HashMap<usize, usize>,
}

static UNIVERSE: LazyLock<Universe> = LazyLock::new(|| {
    let mut tops: Vec<&'static CommandSpec> = cmd::all_commands().collect();
    tops.sort_by_key(|c| c.name);
    let mut u = Universe {
        cmds: Vec::new(),
        by_name: HashMap::new(),
        by_spec: HashMap::new(),
    };
    for top in tops {
        let i = u.cmds.len();
        u.cmds.push(CmdInfo {
            full: top.name,
            cats: categories_of(top.name, top, top),
            subs: Vec::new(),
            no_auth: top.has(flags::NO_AUTH),
            spec: top,
        });
        u.by_name.insert(top.name, i);
        u.by_spec.insert(top as *const CommandSpec as usize, i);
        for sub in top.subcommands {
            let full: &'static str =
                Box::leak(format!("{}|{}", top.name, sub.name).into_boxed_str());
            let j = u.cmds.len();
            u.cmds.push(CmdInfo {
                full,
                cats: categories_of(full, sub, top),
                subs: Vec::new(),
                no_auth: top.has(flags::NO_AUTH),
                spec: sub,
            });
            u.cmds[i].subs.push(j);
            u.by_name.insert(full, j);
            u.by_spec.insert(sub as *const CommandSpec as usize, j);
        }
    }
    u
});

/// The categories of a command: Redis's (from its command metadata) for the commands Redis
/// has, else derived from the engine's flags and group as Redis derives its implicit ones.
fn categories_of(full: &str, spec: &CommandSpec, top: &CommandSpec) -> u32 {
    if let Ok(i) = table::COMMANDS.binary_search_by(|(n, _, _)| (*n).cmp(full)) {
        return table::COMMANDS[i].1;
    }
    let bit = |name: &str| 1u32 << CATEGORIES.iter().position(|c| *c == name).unwrap_or(0);
    let f = spec.flags | top.flags;
    let mut m = 0;
    if f & flags::WRITE != 0 {
        m |= bit("write");
    }
    if f & flags::READONLY != 0 {
        m |= bit("read");
    }
    if f & (flags::ADMIN | flags::ADMIN_USER) != 0 {
        m |= bit("admin") | bit("dangerous");
    }
    if f & flags::PUBSUB != 0 {
        m |= bit("pubsub");
    }
    if f & flags::BLOCKING != 0 {
        m |= bit("blocking");
    }
    m |= if f & flags::FAST != 0 {
        bit("fast")
    } else {
        bit("slow")
    };
    m
}

/// The bit of category `name` (without the `@`), if it is one.
pub fn category_bit(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// Full names of the commands and subcommands in a category (ACL CAT <category>).
pub fn commands_in_category(bit: u32) -> Vec<&'static str> {
    UNIVERSE
        .cmds
        .iter()
        .filter(|c| c.cats & bit != 0)
        .map(|c| c.full)
        .collect()
}

/// The categories of a command or subcommand (COMMAND INFO, COMMAND LIST FILTERBY ACLCAT).
pub fn categories_of_spec(spec: &CommandSpec) -> Vec<&'static str> {
    let Some(&i) = UNIVERSE.by_spec.get(&(spec as *const CommandSpec as usize)) else {
        return Vec::new();
    };
    let cats = UNIVERSE.cmds[i].cats;
    CATEGORIES
        .iter()
        .enumerate()
        .filter(|(b, _)| cats & (1 << b) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// Why a SETUSER modifier was refused (Redis's `ACLSetUserStringError` texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Unknown command or category name in ACL")]
    UnknownName,
    #[error("Syntax error")]
    Syntax,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    AfterAllKeys,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    AfterAllChannels,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
}

/// Key permission flags of a pattern.
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

/// A set of permissions: the root of a user, or one of its `(...)` selectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Set by `+@all`, cleared by `-@all`: how the rules are described (Redis's reserved
    /// "future commands" bit).
    future: bool,
    allowed: Vec<u64>,
    /// Allowed first arguments of commands not allowed as a whole (`+select|0`).
    first_args: BTreeMap<usize, BTreeSet<String>>,
    /// The command rules as ACL GETUSER shows them after `+@all` / `-@all`.
    rules: Vec<String>,
    all_keys: bool,
    keys: Vec<(String, u8)>,
    all_channels: bool,
    channels: Vec<String>,
}

impl Selector {
    fn new(all_channels: bool) -> Selector {
        Selector {
            future: false,
            allowed: vec![0; UNIVERSE.cmds.len().div_ceil(64)],
            first_args: BTreeMap::new(),
            rules: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.allowed[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_bit(&mut self, i: usize, on: bool) {
        if on {
            self.allowed[i / 64] |= 1 << (i % 64);
        } else {
            self.allowed[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Allow or deny a command and its subcommands (`ACLChangeSelectorPerm`).
    fn change_perm(&mut self, i: usize, on: bool) {
        self.set_bit(i, on);
        self.first_args.remove(&i);
        for &s in &UNIVERSE.cmds[i].subs {
            self.set_bit(s, on);
            self.first_args.remove(&s);
        }
    }

    fn set_all(&mut self, on: bool) {
        for w in self.allowed.iter_mut() {
            *w = if on { u64::MAX } else { 0 };
        }
        self.first_args.clear();
        self.future = on;
        self.rules.clear();
    }

    /// Whether it allows everything (no check needed).
    fn unrestricted(&self) -> bool {
        self.future
            && self.rules.is_empty()
            && self.all_keys
            && self.all_channels
            && self.allowed.iter().enumerate().all(|(w, bits)| {
                let n = UNIVERSE.cmds.len();
                let valid = if (w + 1) * 64 <= n {
                    u64::MAX
                } else {
                    (1u64 << (n - w * 64)) - 1
                };
                bits & valid == valid
            })
    }

    /// Apply a command rule to the permissions only (no rule bookkeeping). Returns the rule
    /// as it is recorded (lowercase, the command's full name).
    fn apply_command_op(&mut self, op: &str) -> Result<String, RuleError> {
        let allow = op.starts_with('+');
        let body = op[1..].to_ascii_lowercase();
        if let Some(cat) = body.strip_prefix('@') {
            let bit = category_bit(cat).ok_or(RuleError::UnknownName)?;
            for (i, c) in UNIVERSE.cmds.iter().enumerate() {
                if c.cats & bit != 0 {
                    self.change_perm(i, allow);
                }
            }
            return Ok(body);
        }
        if let Some(&i) = UNIVERSE.by_name.get(body.as_str()) {
            self.change_perm(i, allow);
            return Ok(body);
        }
        // `cmd|arg`: a first argument of a command without subcommands (SELECT 0, DEBUG OBJECT).
        let Some((cmd_name, arg)) = body.rsplit_once('|') else {
            return Err(RuleError::UnknownName);
        };
        let Some(&i) = UNIVERSE.by_name.get(cmd_name) else {
            return Err(RuleError::UnknownName);
        };
        if cmd_name.contains('|') {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if !UNIVERSE.cmds[i].subs.is_empty() || !allow || arg.is_empty() {
            return Err(RuleError::UnknownName);
        }
        if !self.bit(i) {
            self.first_args
                .entry(i)
                .or_default()
                .insert(arg.to_string());
        }
        Ok(body)
    }

    /// Apply one command rule and record it as Redis does (see the module comment).
    fn command_rule(&mut self, op: &str) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        if lower == "allcommands" || lower == "+@all" {
            self.set_all(true);
            return Ok(());
        }
        if lower == "nocommands" || lower == "-@all" {
            self.set_all(false);
            return Ok(());
        }
        let name = self.apply_command_op(op)?;
        // Earlier rules for the same name, or for subcommands / first args of it, are
        // overridden by this one.
        self.rules.retain(|r| {
            let n = &r[1..];
            !(n == name
                || n.strip_prefix(name.as_str())
                    .is_some_and(|t| t.starts_with('|')))
        });
        if self.replay_rules() != (self.allowed.clone(), self.first_args.clone()) {
            self.rules.push(format!(
                "{}{}",
                if op.starts_with('+') { '+' } else { '-' },
                name
            ));
        }
        Ok(())
    }

    /// The permissions the recorded rules produce from `+@all` / `-@all`.
    #[allow(clippy::type_complexity)]
    fn replay_rules(&self) -> (Vec<u64>, BTreeMap<usize, BTreeSet<String>>) {
        let mut s = Selector::new(false);
        s.set_all(self.future);
        for r in &self.rules {
            let _ = s.apply_command_op(r);
        }
        (s.allowed, s.first_args)
    }

    /// Apply one selector modifier (`ACLSetSelector`).
    fn set(&mut self, op: &str) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
                return Ok(());
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
                return Ok(());
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
                return Ok(());
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
                return Ok(());
            }
            _ => {}
        }
        let b = op.as_bytes();
        match b.first() {
            Some(b'~') | Some(b'%') => {
                if self.all_keys {
                    return Err(RuleError::AfterAllKeys);
                }
                let (perm, pattern) = if b[0] == b'%' {
                    let mut perm = 0u8;
                    let mut rest = None;
                    for (i, c) in op.char_indices().skip(1) {
                        match c.to_ascii_uppercase() {
                            'R' if perm & READ == 0 => perm |= READ,
                            'W' if perm & WRITE == 0 => perm |= WRITE,
                            '~' => {
                                rest = Some(&op[i + 1..]);
                                break;
                            }
                            _ => return Err(RuleError::Syntax),
                        }
                    }
                    match rest {
                        Some(p) if perm != 0 && !p.is_empty() => (perm, p),
                        _ => return Err(RuleError::Syntax),
                    }
                } else {
                    (READ | WRITE, &op[1..])
                };
                if pattern == "*" && perm == READ | WRITE {
                    self.all_keys = true;
                    self.keys.clear();
                    return Ok(());
                }
                match self.keys.iter_mut().find(|(p, _)| p == pattern) {
                    Some((_, f)) => *f |= perm,
                    None => self.keys.push((pattern.to_string(), perm)),
                }
                Ok(())
            }
            Some(b'&') => {
                if self.all_channels {
                    return Err(RuleError::AfterAllChannels);
                }
                let p = &op[1..];
                if !self.channels.iter().any(|c| c == p) {
                    self.channels.push(p.to_string());
                }
                Ok(())
            }
            Some(b'+') | Some(b'-') => self.command_rule(op),
            _ if lower == "allcommands" || lower == "nocommands" => self.command_rule(op),
            _ => Err(RuleError::Syntax),
        }
    }

    /// The rules as ACL GETUSER's `commands` shows them.
    fn describe_commands(&self) -> String {
        let mut s = String::from(if self.future { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    /// ACL GETUSER's `keys`.
    fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys
            .iter()
            .map(|(p, f)| describe_key_pattern(p, *f))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// ACL GETUSER's `channels`.
    fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels
            .iter()
            .map(|c| format!("&{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The selector in ACL LIST's form (`ACLDescribeSelector`).
    fn describe(&self) -> String {
        let mut out = String::new();
        if self.all_keys {
            out.push_str("~* ");
        } else {
            for (p, f) in &self.keys {
                out.push_str(&describe_key_pattern(p, *f));
                out.push(' ');
            }
        }
        if self.all_channels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(c);
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }

    /// Whether the selector lets the command run (`ACLSelectorCheckCmd`).
    fn check(&self, idx: usize, args: &[Arg]) -> Result<(), Denied> {
        let info = &UNIVERSE.cmds[idx];
        if !info.no_auth && !self.bit(idx) {
            let ok = args.len() >= 2
                && self.first_args.get(&idx).is_some_and(|set| {
                    set.iter()
                        .any(|a| a.as_bytes().eq_ignore_ascii_case(&args[1]))
                });
            if !ok {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys {
            for (pos, need) in key_needs(info, args) {
                let key = &args[pos][..];
                let ok = self
                    .keys
                    .iter()
                    .any(|(p, f)| f & need == need && glob_match(p.as_bytes(), key, false));
                if !ok {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            for (pos, pattern) in channel_args(info.spec, info.full, args) {
                if !self.channel_allowed(&args[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p.as_bytes() == channel
                } else {
                    glob_match(p.as_bytes(), channel, false)
                }
            })
    }
}

fn describe_key_pattern(p: &str, f: u8) -> String {
    match f {
        READ => format!("%R~{p}"),
        WRITE => format!("%W~{p}"),
        _ => format!("~{p}"),
    }
}

/// The key arguments of a command and the permissions each needs (read and/or write), from
/// Redis's key specs: the last index spec at or before the key, or the keyword spec whose
/// keyword comes before it; a key after STORE / STOREDIST is written.
fn key_needs(info: &CmdInfo, args: &[Arg]) -> Vec<(usize, u8)> {
    let positions = info.spec.key_positions(args);
    if positions.is_empty() {
        return Vec::new();
    }
    let specs: &[(table::Begin, u8)] = table::COMMANDS
        .binary_search_by(|(n, _, _)| (*n).cmp(info.full))
        .map(|i| table::COMMANDS[i].2)
        .unwrap_or(&[]);
    let fallback = if info.spec.has(flags::WRITE) {
        READ | WRITE
    } else {
        READ
    };
    positions
        .into_iter()
        .filter(|&p| p < args.len())
        .filter_map(|pos| {
            if pos >= 2
                && (args[pos - 1].eq_ignore_ascii_case(b"store")
                    || args[pos - 1].eq_ignore_ascii_case(b"storedist"))
                && !specs.is_empty()
            {
                return Some((pos, WRITE));
            }
            let mut best: Option<(usize, u8)> = None;
            for (begin, f) in specs {
                let at = match begin {
                    table::Begin::Index(i) if *i <= pos => Some(*i),
                    table::Begin::Keyword(k) => (1..pos)
                        .rev()
                        .find(|&j| args[j].eq_ignore_ascii_case(k.as_bytes())),
                    _ => None,
                };
                if let Some(at) = at {
                    if best.is_none_or(|(b, _)| at >= b) {
                        best = Some((at, *f));
                    }
                }
            }
            let f = match best {
                Some((_, f)) => f,
                None if specs.is_empty() => fallback,
                None => specs[0].1,
            };
            if f & 8 != 0 {
                // A shard channel the engine's table lists as a key (for cluster routing).
                return None;
            }
            let f = if f & 4 != 0 {
                variable_key_flags(info.full, args)
            } else {
                f
            };
            Some((pos, f & (READ | WRITE)))
        })
        .collect()
}

/// The key flags of commands whose flags depend on their arguments (Redis's `setGetKeys`,
/// `bitfieldGetKeys`).
fn variable_key_flags(full: &str, args: &[Arg]) -> u8 {
    match full {
        // SET reads the key only with GET.
        "set" => {
            if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
                READ | WRITE
            } else {
                WRITE
            }
        }
        // BITFIELD writes only with SET or INCRBY.
        "bitfield" => {
            if args
                .iter()
                .skip(2)
                .any(|a| a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby"))
            {
                READ | WRITE
            } else {
                READ
            }
        }
        _ => READ | WRITE,
    }
}

/// The channel arguments a command publishes or subscribes to, and whether each is a pattern.
fn channel_args(spec: &CommandSpec, full: &str, args: &[Arg]) -> Vec<(usize, bool)> {
    let _ = spec;
    match full {
        "publish" | "spublish" if args.len() > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Why a command was refused. Ordered as Redis ranks them when selectors disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// The refused argument's position (0 for a refused command).
    fn pos(self) -> usize {
        match self {
            Denied::Command => 0,
            Denied::Key(p) | Denied::Channel(p) => p,
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)`: skip-sanitize-payload, `Some(false)`: sanitize-payload.
    pub skip_sanitize: Option<bool>,
    /// SHA-256 of each password, lowercase hex.
    pub passwords: Vec<String>,
    /// The root selector first, then the `(...)` ones.
    pub selectors: Vec<Selector>,
    unrestricted: bool,
}

/// SHA-256 of a password as lowercase hex (how Redis stores and shows it).
pub fn hash_password(pass: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, pass);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl User {
    /// A new user: off, no passwords, no commands, no keys, channels per acl-pubsub-default.
    pub fn new(name: &str, all_channels: bool) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            skip_sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(all_channels)],
            unrestricted: false,
        }
    }

    /// Apply one SETUSER modifier (`ACLSetUser`).
    pub fn set(&mut self, op: &str, all_channels_default: bool) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.skip_sanitize = Some(true),
            "sanitize-payload" => self.skip_sanitize = Some(false),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.truncate(1),
            "reset" => {
                for o in ["resetpass", "resetkeys", "resetchannels"] {
                    self.set(o, all_channels_default)?;
                }
                if all_channels_default {
                    self.set("allchannels", all_channels_default)?;
                }
                for o in ["off", "clearselectors", "-@all"] {
                    self.set(o, all_channels_default)?;
                }
                self.skip_sanitize = None;
            }
            _ => match op.as_bytes()[0] {
                b'>' => {
                    let h = hash_password(&op.as_bytes()[1..]);
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                b'#' => {
                    let h = &op[1..];
                    if !valid_hash(h) {
                        return Err(RuleError::BadHash);
                    }
                    if !self.passwords.iter().any(|p| p == h) {
                        self.passwords.push(h.to_string());
                    }
                    self.nopass = false;
                }
                b'<' | b'!' => {
                    let h = if op.as_bytes()[0] == b'<' {
                        hash_password(&op.as_bytes()[1..])
                    } else {
                        let h = &op[1..];
                        if !valid_hash(h) {
                            return Err(RuleError::BadHash);
                        }
                        h.to_string()
                    };
                    let before = self.passwords.len();
                    self.passwords.retain(|p| *p != h);
                    if self.passwords.len() == before {
                        return Err(RuleError::NoSuchPassword);
                    }
                    self.nopass = false;
                }
                b'(' if op.ends_with(')') && op.len() >= 2 => {
                    let mut s = Selector::new(false);
                    for part in op[1..op.len() - 1].split_ascii_whitespace() {
                        s.set(part)?;
                    }
                    self.selectors.push(s);
                }
                _ => self.selectors[0].set(op)?,
            },
        }
        self.unrestricted = self.selectors[0].unrestricted();
        Ok(())
    }

    /// Whether the user may run every command on every key and channel (`+@all ~* &*`, the
    /// default user's rules): [`User::check`] then allows anything without looking.
    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    /// Whether `pass` authenticates this user (disabled users never authenticate).
    pub fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = hash_password(pass);
        self.passwords.contains(&h)
    }

    /// Whether the user may run `spec` (of `parent`) with `args`: one selector must allow it
    /// all; otherwise the most telling refusal (Redis ranks command < key < channel).
    pub fn check(&self, spec: &CommandSpec, args: &[Arg]) -> Result<(), Denied> {
        if self.unrestricted {
            return Ok(());
        }
        let Some(&idx) = UNIVERSE.by_spec.get(&(spec as *const CommandSpec as usize)) else {
            return Ok(());
        };
        let mut worst: Option<Denied> = None;
        for s in &self.selectors {
            match s.check(idx, args) {
                Ok(()) => return Ok(()),
                // Redis reports the highest-ranked refusal, and of equal ones the latest
                // argument.
                Err(d) => {
                    if worst.is_none_or(|w| (rank(d), d.pos()) > (rank(w), w.pos())) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or(Denied::Command))
    }

    /// Whether some selector that lets the command run may read every key (`~*`, `allkeys` or
    /// `%R~*`): SORT's BY and GET read keys named by patterns, which cannot be checked one by
    /// one (Redis's `ACLUserCheckCmdWithUnrestrictedKeyAccess`).
    pub fn can_read_all_keys(&self, spec: &CommandSpec, args: &[Arg]) -> bool {
        if self.unrestricted {
            return true;
        }
        let Some(&idx) = UNIVERSE.by_spec.get(&(spec as *const CommandSpec as usize)) else {
            return true;
        };
        self.selectors.iter().any(|s| {
            let mut cmd_only = s.clone();
            cmd_only.all_keys = true;
            cmd_only.all_channels = true;
            cmd_only.check(idx, args).is_ok()
                && (s.all_keys || s.keys.iter().any(|(p, f)| p == "*" && f & READ != 0))
        })
    }

    /// Whether a subscription (channel or pattern) is still allowed by some selector.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.selectors
            .iter()
            .any(|s| s.channel_allowed(channel, is_pattern))
    }

    /// Whether every channel is allowed by the root selector.
    pub fn all_channels(&self) -> bool {
        self.selectors[0].all_channels
    }

    /// The user as ACL LIST and the ACL file write it (`ACLDescribeUser`).
    pub fn describe(&self) -> String {
        let mut out = format!("user {} ", self.name);
        out.push_str(if self.enabled { "on " } else { "off " });
        if self.nopass {
            out.push_str("nopass ");
        }
        match self.skip_sanitize {
            Some(true) => out.push_str("skip-sanitize-payload "),
            Some(false) => out.push_str("sanitize-payload "),
            None => {}
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.selectors[0].describe());
        for s in &self.selectors[1..] {
            out.push_str(" (");
            out.push_str(&s.describe());
            out.push(')');
        }
        out
    }

    /// ACL GETUSER's flags.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.skip_sanitize {
            Some(true) => f.push("skip-sanitize-payload"),
            Some(false) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// (commands, keys, channels) of each selector, root first.
    pub fn selector_descriptions(&self) -> Vec<(String, String, String)> {
        self.selectors
            .iter()
            .map(|s| {
                (
                    s.describe_commands(),
                    s.describe_keys(),
                    s.describe_channels(),
                )
            })
            .collect()
    }
}

fn rank(d: Denied) -> u8 {
    match d {
        Denied::Command => 1,
        Denied::Key(_) => 2,
        Denied::Channel(_) => 4,
    }
}

/// Merge SETUSER arguments so a selector split over several arguments (`(~key1` `+get)`)
/// becomes one (`ACLMergeSelectorArguments`). Err(index of the unmatched `(`).
pub fn merge_selector_args(args: &[String]) -> Result<Vec<String>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Some((start, mut acc)) = open.take() {
            acc.push(' ');
            acc.push_str(a);
            if a.ends_with(')') {
                out.push(acc);
            } else {
                open = Some((start, acc));
            }
            continue;
        }
        if a.starts_with('(') && !a.ends_with(')') {
            open = Some((i, a.clone()));
            continue;
        }
        out.push(a.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}

/// Where a refused command was: at top level, queued in or run by EXEC, or called by a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Multi,
    Lua,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: LogContext,
    pub object: String,
    pub username: String,
    pub created_ms: i64,
    pub client_info: String,
}

/// Similar entries within this time are counted in one entry (Redis's grouping delta).
const LOG_GROUPING_MS: i64 = 60_000;

/// The users and the ACL log.
#[derive(Debug)]
pub struct Acl {
    /// Private so that every change goes through `set_user`/`remove_user`, which move
    /// `generation` on.
    users: BTreeMap<String, Arc<User>>,
    pub log: VecDeque<LogEntry>,
    /// Changes with every change to `users`. A connection keeps the `Arc<User>` it resolved
    /// together with this number and looks its user up again only when the number moved, so
    /// the per-command check does not search the map by name (~100 instructions a command) and
    /// an ACL SETUSER / DELUSER / LOAD still applies to the very next command of every client.
    /// Numbers come from one process-wide counter, so an `Acl` that replaces another (ACL LOAD,
    /// a reload) never carries the number a connection saw on the one it replaced.
    generation: u64,
}

/// A number no `Acl` of this process had before (see `Acl::generation`).
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Acl {
    /// The default user alone: on, nopass, everything allowed (Redis's start state).
    pub fn new() -> Acl {
        let mut users = BTreeMap::new();
        let mut d = User::new("default", true);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            d.set(op, true).expect("the default user's rules are valid");
        }
        users.insert("default".to_string(), Arc::new(d));
        Acl {
            users,
            log: VecDeque::new(),
            generation: next_generation(),
        }
    }

    pub fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.users.get(name)
    }

    /// Every user by name (in name order, as ACL LIST and ACL USERS show them).
    pub fn users(&self) -> &BTreeMap<String, Arc<User>> {
        &self.users
    }

    /// Add or replace a user.
    pub fn set_user(&mut self, name: String, user: Arc<User>) {
        self.users.insert(name, user);
        self.generation = next_generation();
    }

    /// Remove a user; the removed one, if it existed.
    pub fn remove_user(&mut self, name: &str) -> Option<Arc<User>> {
        let removed = self.users.remove(name);
        if removed.is_some() {
            self.generation = next_generation();
        }
        removed
    }

    /// The number that changes with every change to the users (see the field).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn default_user(&self) -> &Arc<User> {
        self.users
            .get("default")
            .expect("the default user cannot be deleted")
    }

    /// Whether a new connection starts authenticated (the default user is on and nopass).
    pub fn new_connections_authenticated(&self) -> bool {
        let d = self.default_user();
        d.enabled && d.nopass
    }

    /// `requirepass` changed: the default user's password becomes it (none: nopass), as Redis's
    /// `ACLUpdateDefaultUserPassword`.
    pub fn set_default_password(&mut self, pass: Option<&[u8]>) {
        let mut d = (**self.default_user()).clone();
        let _ = d.set("resetpass", true);
        match pass {
            Some(p) => {
                let h = hash_password(p);
                d.passwords.push(h);
            }
            None => {
                let _ = d.set("nopass", true);
            }
        }
        self.set_user("default".into(), Arc::new(d));
    }

    /// Add an entry to ACL LOG (grouping it with a similar recent one), keeping `max_len`.
    #[allow(clippy::too_many_arguments)]
    pub fn log_denial(
        &mut self,
        reason: &'static str,
        context: LogContext,
        object: String,
        username: String,
        client_info: String,
        now_ms: i64,
        max_len: usize,
    ) {
        if let Some(pos) = self.log.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms - e.created_ms < LOG_GROUPING_MS
        }) {
            let mut e = self.log.remove(pos).expect("position is in range");
            e.count += 1;
            e.created_ms = now_ms;
            e.client_info = client_info;
            self.log.push_front(e);
            return;
        }
        self.log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            created_ms: now_ms,
            client_info,
        });
        self.log.truncate(max_len);
    }
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

/// The reason and object of a refusal for ACL LOG.
pub fn denial_log_fields(d: Denied, spec_full: &str, args: &[Arg]) -> (&'static str, String) {
    match d {
        Denied::Command => ("command", spec_full.to_string()),
        Denied::Key(p) => ("key", String::from_utf8_lossy(&args[p]).into_owned()),
        Denied::Channel(p) => ("channel", String::from_utf8_lossy(&args[p]).into_owned()),
    }
}

/// The full name of a command or subcommand ("get", "client|kill").
pub fn full_name(spec: &CommandSpec) -> &'static str {
    UNIVERSE
        .by_spec
        .get(&(spec as *const CommandSpec as usize))
        .map(|&i| UNIVERSE.cmds[i].full)
        .unwrap_or("")
}

/// Whether `name` is a command or `command|subcommand` the engine knows (ACL DRYRUN).
pub fn known_command(name: &str) -> bool {
    UNIVERSE
        .by_name
        .contains_key(name.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ops: &str) -> User {
        let mut u = User::new("t", false);
        for op in ops.split(' ') {
            u.set(op, false).unwrap();
        }
        u
    }

    fn commands(ops: &str) -> String {
        user(ops).selector_descriptions()[0].0.clone()
    }

    #[test]
    fn rules_are_described_as_redis_describes_them() {
        // Each expectation was read from redis-server 7.0.15 (ACL GETUSER ... commands).
        let cases = [
            ("-@all +client|id", "-@all +client|id"),
            ("+@all +get", "+@all"),
            ("-@all -get", "-@all"),
            ("+@all -client|kill -client", "+@all -client"),
            ("-@all +client|id -client|id", "-@all"),
            ("-@all +client|id -client", "-@all"),
            (
                "+@all -client +client|id +client|kill",
                "+@all -client +client|id +client|kill",
            ),
            ("-@all +@string -get", "-@all +@string -get"),
            ("-@all +@string +get", "-@all +@string"),
            ("-@all +select|0 +select", "-@all +select"),
            ("-@all +select +select|0", "-@all +select"),
            ("-@all +select|0 -select", "-@all"),
            ("-@all +@string -@string", "-@all"),
            ("+@all -@all +get", "-@all +get"),
            ("-@all +client -client|kill +client|kill", "-@all +client"),
        ];
        for (ops, want) in cases {
            assert_eq!(commands(ops), want, "{ops}");
        }
    }

    #[test]
    fn bad_modifiers_are_refused_with_redis_reasons() {
        let mut u = User::new("t", false);
        assert_eq!(u.set("+nosuch", false), Err(RuleError::UnknownName));
        assert_eq!(u.set("+config|asdf", false), Err(RuleError::UnknownName));
        assert_eq!(u.set("+get|a|b", false), Err(RuleError::UnknownName));
        assert_eq!(
            u.set("+config|get|appendonly", false),
            Err(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(u.set("#abc", false), Err(RuleError::BadHash));
        assert_eq!(u.set("<nope", false), Err(RuleError::NoSuchPassword));
        assert_eq!(u.set("bogus", false), Err(RuleError::Syntax));
        u.set("allkeys", false).unwrap();
        assert_eq!(u.set("~foo", false), Err(RuleError::AfterAllKeys));
    }

    #[test]
    fn key_permissions_follow_read_and_write_patterns() {
        let u = user("on nopass %R~r* %W~w* +@all");
        let get = cmd::lookup(b"get").unwrap();
        let set = cmd::lookup(b"set").unwrap();
        let args =
            |v: &[&str]| -> Vec<Arg> { v.iter().map(|s| Arg::from(s.to_string())).collect() };
        assert!(u.check(get, &args(&["get", "r1"])).is_ok());
        assert_eq!(u.check(get, &args(&["get", "w1"])), Err(Denied::Key(1)));
        assert!(u.check(set, &args(&["set", "w1", "v"])).is_ok());
        // SET ... GET reads the key too.
        assert!(u.check(set, &args(&["set", "w1", "v", "get"])).is_err());
        let lmove = cmd::lookup(b"lmove").unwrap();
        assert!(u
            .check(lmove, &args(&["lmove", "r1", "w1", "left", "left"]))
            .is_err());
    }

    #[test]
    fn the_default_user_is_described_as_in_redis() {
        let acl = Acl::new();
        assert_eq!(
            acl.default_user().describe(),
            "user default on nopass ~* &* +@all"
        );
        assert!(acl.default_user().unrestricted);
    }
}
