//! `state`: what a rule remembers in one room between events.
//!
//! Scripts use `state` as a map. Every map and list inside it is a node held
//! by reference, so reading `state.seen` hands over the node, not a copy:
//! `id in state.seen`, `state.seen == ()`, `state.seen[id] = true` and
//! `state.queue.len()` cost what the operation costs, however large the map.
//! No lock is held while script code runs, so a closure may read `state`
//! inside a method called on `state` (`state.names.filter(|n| n !=
//! state.last)`). Anything else done with a node (`filter`, `sort`, passing
//! it where a plain map is expected) works on a copy, which costs what the
//! operation costs anyway; a method that changed its copy writes it back.
//!
//! Storing a node anywhere else in state stores a copy, so state never holds
//! a cycle. Every node counts against its state's [`Budget`], so the
//! sandbox's limits on map entries, list items and text apply to a rule's
//! whole state in a room, as they did when state was one Rhai map.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, EvalContext, FuncRegistration, INT, ImmutableString,
    Map, NativeCallContext, Position,
};

use super::engine::Limits;

type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// The sizes a state may grow to, and what it holds now.
struct Budget {
    /// Entries in all its maps.
    max_entries: usize,
    /// Items in all its lists.
    max_items: usize,
    /// Bytes of text in all its string values.
    max_text: usize,
    entries: AtomicUsize,
    items: AtomicUsize,
    text: AtomicUsize,
}

/// How much one node holds, as its budget counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Size {
    entries: usize,
    items: usize,
    text: usize,
}

impl Budget {
    fn new(limits: &Limits) -> Self {
        Budget {
            max_entries: limits.max_map_size,
            max_items: limits.max_array_size,
            max_text: limits.max_string_size,
            entries: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            text: AtomicUsize::new(0),
        }
    }

    /// Takes `added` and gives back `removed`, unless that would grow the
    /// state past a limit; then nothing changes.
    fn change(&self, added: Size, removed: Size) -> ScriptResult<()> {
        let counters = [
            (
                &self.entries,
                added.entries,
                removed.entries,
                self.max_entries,
            ),
            (&self.items, added.items, removed.items, self.max_items),
            (&self.text, added.text, removed.text, self.max_text),
        ];
        for (counter, added, removed, max) in counters {
            let after = (counter.load(Ordering::Relaxed) + added).saturating_sub(removed);
            if added > removed && after > max {
                return Err(format!(
                    "`state` grew larger than allowed ({} map entries, {} list items and {} bytes \
                     of text in all); remove what it no longer needs",
                    self.max_entries, self.max_items, self.max_text
                )
                .into());
            }
        }
        for (counter, added, removed, _) in counters {
            counter.fetch_add(added, Ordering::Relaxed);
            counter.fetch_sub(removed, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// A map or list inside a state.
struct Node {
    contents: Mutex<Contents>,
    budget: Arc<Budget>,
}

struct Contents {
    values: Values,
    /// Bytes of text in this node's own string values.
    text: usize,
}

#[derive(Clone)]
enum Values {
    Map(Map),
    List(Array),
}

impl Contents {
    fn size(&self) -> Size {
        let (entries, items) = match &self.values {
            Values::Map(map) => (map.len(), 0),
            Values::List(list) => (0, list.len()),
        };
        Size {
            entries,
            items,
            text: self.text,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let contents = self
            .contents
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // Giving back never fails.
        let _ = self.budget.change(Size::default(), contents.size());
    }
}

impl Node {
    fn new(budget: &Arc<Budget>, values: Values) -> Arc<Node> {
        Arc::new(Node {
            contents: Mutex::new(Contents { values, text: 0 }),
            budget: budget.clone(),
        })
    }

    /// The node's contents. No script code runs while they are held, so
    /// they are never held twice; if they were, the call fails rather than
    /// waiting for ever.
    fn lock(&self) -> ScriptResult<MutexGuard<'_, Contents>> {
        match self.contents.try_lock() {
            Ok(contents) => Ok(contents),
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {
                Err("`state` is in use by the operation in progress".into())
            }
        }
    }

    /// Replaces the value at a slot, accounting for the change.
    fn replace(&self, slot: Slot, value: Dynamic) -> ScriptResult<Option<Dynamic>> {
        let mut contents = self.lock()?;
        let old = match (&contents.values, &slot) {
            (Values::Map(map), Slot::Key(key)) => map.get(key.as_str()),
            (Values::List(list), Slot::Index(index)) => list.get(*index),
            (Values::List(_), Slot::Insert(_)) => None,
            _ => return Err("a map is indexed by text and a list by number".into()),
        };
        let added = Size {
            entries: usize::from(matches!(slot, Slot::Key(_)) && old.is_none()),
            items: usize::from(matches!(slot, Slot::Insert(_))),
            text: text_len(&value),
        };
        let removed = Size {
            text: old.map_or(0, text_len),
            ..Size::default()
        };
        self.budget.change(added, removed)?;
        contents.text = (contents.text + added.text).saturating_sub(removed.text);
        Ok(match (&mut contents.values, slot) {
            (Values::Map(map), Slot::Key(key)) => map.insert(key.as_str().into(), value),
            (Values::List(list), Slot::Index(index)) => {
                Some(std::mem::replace(&mut list[index], value))
            }
            (Values::List(list), Slot::Insert(index)) => {
                list.insert(index, value);
                None
            }
            _ => None,
        })
    }

    /// Takes the value out of a slot, accounting for the change.
    fn take(&self, slot: Slot) -> ScriptResult<Dynamic> {
        let mut contents = self.lock()?;
        let taken = match (&mut contents.values, slot) {
            (Values::Map(map), Slot::Key(key)) => map.remove(key.as_str()),
            (Values::List(list), Slot::Index(index)) if index < list.len() => {
                Some(list.remove(index))
            }
            _ => None,
        };
        let Some(taken) = taken else {
            return Ok(Dynamic::UNIT);
        };
        let is_map = matches!(contents.values, Values::Map(_));
        let removed = Size {
            entries: usize::from(is_map),
            items: usize::from(!is_map),
            text: text_len(&taken),
        };
        contents.text = contents.text.saturating_sub(removed.text);
        self.budget.change(Size::default(), removed)?;
        Ok(taken)
    }

    /// Empties the node.
    fn clear(&self) -> ScriptResult<()> {
        let old = {
            let mut contents = self.lock()?;
            let size = contents.size();
            self.budget.change(Size::default(), size)?;
            contents.text = 0;
            match &mut contents.values {
                Values::Map(map) => Values::Map(std::mem::take(map)),
                Values::List(list) => Values::List(std::mem::take(list)),
            }
        };
        drop(old);
        Ok(())
    }

    /// A shallow copy of the values: nested nodes are shared.
    fn values(&self) -> ScriptResult<Values> {
        Ok(self.lock()?.values.clone())
    }
}

/// Where a value goes in a node.
enum Slot {
    Key(ImmutableString),
    Index(usize),
    Insert(usize),
}

/// A map in a rule's state, as scripts see it (`type_of` says "map").
#[derive(Clone)]
pub struct StateMap(Arc<Node>);

/// A list in a rule's state, as scripts see it (`type_of` says "array").
#[derive(Clone)]
pub struct StateList(Arc<Node>);

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateMap")
    }
}

impl fmt::Debug for StateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateList")
    }
}

/// A new, empty state for one rule in one room, within `limits`.
pub(crate) fn new_state(limits: &Limits) -> Dynamic {
    let budget = Arc::new(Budget::new(limits));
    Dynamic::from(StateMap(Node::new(&budget, Values::Map(Map::new()))))
}

/// A rule's state in one room, within `limits`, holding `saved` (a plain
/// map, as [`plain`] gives and a snapshot keeps). Anything but a map gives
/// an empty state.
pub(crate) fn restored_state(limits: &Limits, saved: Dynamic) -> ScriptResult<Dynamic> {
    if !saved.is_map() {
        return Ok(new_state(limits));
    }
    let budget = Arc::new(Budget::new(limits));
    adopt(&budget, saved, None)
}

/// The node behind a value, if it is one.
fn node_of(value: &Dynamic) -> Option<Arc<Node>> {
    if let Some(map) = value.read_lock::<StateMap>() {
        return Some(map.0.clone());
    }
    value.read_lock::<StateList>().map(|list| list.0.clone())
}

fn is_node(value: &Dynamic) -> bool {
    value.is::<StateMap>() || value.is::<StateList>()
}

fn text_len(value: &Dynamic) -> usize {
    value
        .read_lock::<ImmutableString>()
        .map_or(0, |text| text.len())
}

/// Turns a value into one that can be stored in `budget`'s state: maps and
/// lists become nodes, a node from anywhere but `current` (the slot's value
/// now, which is written back unchanged) is copied, anything else is kept.
fn adopt(budget: &Arc<Budget>, value: Dynamic, current: Option<&Dynamic>) -> ScriptResult<Dynamic> {
    let value = value.flatten();
    if let Some(node) = node_of(&value) {
        if current
            .and_then(node_of)
            .is_some_and(|current| Arc::ptr_eq(&current, &node))
        {
            return Ok(value);
        }
        return adopt(budget, plain(&value)?, None);
    }
    if value.is_map() {
        let node = Node::new(budget, Values::Map(Map::new()));
        for (key, item) in value.cast::<Map>() {
            let item = adopt(budget, item, None)?;
            node.replace(Slot::Key(key.as_str().into()), item)?;
        }
        return Ok(Dynamic::from(StateMap(node)));
    }
    if value.is_array() {
        let node = Node::new(budget, Values::List(Array::new()));
        for (index, item) in value.cast::<Array>().into_iter().enumerate() {
            let item = adopt(budget, item, None)?;
            node.replace(Slot::Insert(index), item)?;
        }
        return Ok(Dynamic::from(StateList(node)));
    }
    Ok(value)
}

/// A plain copy of a value: nodes, and nodes inside plain maps and lists,
/// become ordinary Rhai maps and arrays.
pub(crate) fn plain(value: &Dynamic) -> ScriptResult<Dynamic> {
    if let Some(node) = node_of(value) {
        return match node.values()? {
            Values::Map(map) => plain_map(map),
            Values::List(list) => plain_list(list),
        };
    }
    if let Some(map) = value.read_lock::<Map>() {
        return plain_map(map.clone());
    }
    if let Some(list) = value.read_lock::<Array>() {
        return plain_list(list.clone());
    }
    Ok(value.clone())
}

fn plain_map(map: Map) -> ScriptResult<Dynamic> {
    map.into_iter()
        .map(|(key, value)| Ok((key, plain(&value)?)))
        .collect::<ScriptResult<Map>>()
        .map(Dynamic::from_map)
}

fn plain_list(list: Array) -> ScriptResult<Dynamic> {
    list.iter()
        .map(plain)
        .collect::<ScriptResult<Array>>()
        .map(Dynamic::from_array)
}

/// A value as text for a message or the log; state is shown as its contents.
pub(crate) fn display(value: &Dynamic) -> String {
    plain(value).unwrap_or_else(|_| value.clone()).to_string()
}

/// Two plain values are surely equal (a changed copy is written back).
fn same(a: &Dynamic, b: &Dynamic) -> bool {
    if a.type_id() != b.type_id() {
        return false;
    }
    if let (Some(a), Some(b)) = (a.read_lock::<Map>(), b.read_lock::<Map>()) {
        return a.len() == b.len()
            && a.iter()
                .zip(b.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb));
    }
    if let (Some(a), Some(b)) = (a.read_lock::<Array>(), b.read_lock::<Array>()) {
        return a.len() == b.len() && a.iter().zip(b.iter()).all(|(a, b)| same(a, b));
    }
    format!("{a:?}") == format!("{b:?}")
}

impl StateMap {
    fn get(&mut self, key: ImmutableString) -> ScriptResult<Dynamic> {
        match &self.0.lock()?.values {
            Values::Map(map) => Ok(map.get(key.as_str()).cloned().unwrap_or(Dynamic::UNIT)),
            Values::List(_) => Ok(Dynamic::UNIT),
        }
    }

    fn set(&mut self, key: ImmutableString, value: Dynamic) -> ScriptResult<()> {
        let current = self.get(key.clone())?;
        let value = adopt(&self.0.budget, value, Some(&current))?;
        drop(current);
        self.0.replace(Slot::Key(key), value).map(drop)
    }

    fn contains(&mut self, key: &str) -> ScriptResult<bool> {
        match &self.0.lock()?.values {
            Values::Map(map) => Ok(map.contains_key(key)),
            Values::List(_) => Ok(false),
        }
    }

    fn keys(&mut self) -> ScriptResult<Array> {
        match &self.0.lock()?.values {
            Values::Map(map) => Ok(map
                .keys()
                .map(|key| ImmutableString::from(key.as_str()).into())
                .collect()),
            Values::List(_) => Ok(Array::new()),
        }
    }

    fn values(&mut self) -> ScriptResult<Array> {
        match &self.0.lock()?.values {
            Values::Map(map) => Ok(map.values().cloned().collect()),
            Values::List(_) => Ok(Array::new()),
        }
    }

    fn mixin(&mut self, other: Map) -> ScriptResult<()> {
        for (key, value) in other {
            self.set(key.as_str().into(), value)?;
        }
        Ok(())
    }
}

impl StateList {
    /// Rhai's indexing: negative indices count from the end.
    fn position(&self, index: INT) -> ScriptResult<usize> {
        let len = self.len()?;
        let position = if index < 0 {
            (len as INT).checked_add(index)
        } else {
            Some(index)
        };
        position
            .and_then(|position| usize::try_from(position).ok())
            .filter(|position| *position < len)
            .ok_or_else(|| EvalAltResult::ErrorArrayBounds(len, index, Position::NONE).into())
    }

    fn len(&self) -> ScriptResult<usize> {
        Ok(self.0.lock()?.size().items)
    }

    fn get(&mut self, index: INT) -> ScriptResult<Dynamic> {
        let position = self.position(index)?;
        match &self.0.lock()?.values {
            Values::List(list) => Ok(list[position].clone()),
            Values::Map(_) => Ok(Dynamic::UNIT),
        }
    }

    fn set(&mut self, index: INT, value: Dynamic) -> ScriptResult<()> {
        let position = self.position(index)?;
        let current = self.get(index)?;
        let value = adopt(&self.0.budget, value, Some(&current))?;
        drop(current);
        self.0.replace(Slot::Index(position), value).map(drop)
    }

    fn insert(&mut self, index: INT, value: Dynamic) -> ScriptResult<()> {
        let len = self.len()?;
        let position = if index < 0 {
            (len as INT + index).max(0) as usize
        } else {
            (index as usize).min(len)
        };
        let value = adopt(&self.0.budget, value, None)?;
        self.0.replace(Slot::Insert(position), value).map(drop)
    }

    fn push(&mut self, value: Dynamic) -> ScriptResult<()> {
        let value = adopt(&self.0.budget, value, None)?;
        let end = self.len()?;
        self.0.replace(Slot::Insert(end), value).map(drop)
    }

    fn append(&mut self, values: Array) -> ScriptResult<()> {
        values.into_iter().try_for_each(|value| self.push(value))
    }

    fn remove(&mut self, index: INT) -> ScriptResult<Dynamic> {
        match self.position(index) {
            Ok(position) => self.0.take(Slot::Index(position)),
            Err(_) => Ok(Dynamic::UNIT),
        }
    }

    fn contains(&mut self, context: &NativeCallContext, value: &Dynamic) -> ScriptResult<bool> {
        let Values::List(list) = self.0.values()? else {
            return Ok(false);
        };
        for item in list {
            if equal(context, item, value.clone())? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl IntoIterator for StateList {
    type Item = Dynamic;
    type IntoIter = std::vec::IntoIter<Dynamic>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0.values() {
            Ok(Values::List(list)) => list.into_iter(),
            _ => Vec::new().into_iter(),
        }
    }
}

/// Scripts' `==` on two values, either of which may be state.
fn equal(context: &NativeCallContext, a: Dynamic, b: Dynamic) -> ScriptResult<bool> {
    if a.is_unit() || b.is_unit() {
        return Ok(a.is_unit() && b.is_unit());
    }
    if let (Some(a), Some(b)) = (node_of(&a), node_of(&b))
        && Arc::ptr_eq(&a, &b)
    {
        return Ok(true);
    }
    let (mut a, mut b) = (plain(&a)?, plain(&b)?);
    if a.type_id() != b.type_id() {
        return Ok(false);
    }
    match context.call_native_fn_raw("==", false, &mut [&mut a, &mut b]) {
        Ok(equal) => Ok(equal.as_bool().unwrap_or(false)),
        Err(err) if matches!(*err, EvalAltResult::ErrorFunctionNotFound(..)) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Functions registered on state itself; everything else falls back to a copy.
const NATIVE: [&str; 19] = [
    "index$get$",
    "index$set$",
    "contains",
    "len",
    "is_empty",
    "keys",
    "values",
    "remove",
    "clear",
    "push",
    "pop",
    "shift",
    "insert",
    "append",
    "mixin",
    "+=",
    "==",
    "!=",
    "to_string",
];

/// Registers state's types and functions on an engine.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<StateMap>("map");
    engine.register_type_with_name::<StateList>("array");
    engine.register_iterator::<StateList>();

    // Writing into state changes the node, never the handle: the handle
    // `state` resolves to is read-only, and these must be allowed on it.
    FuncRegistration::new_index_getter()
        .with_purity(true)
        .register_into_engine(engine, StateMap::get);
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(engine, StateMap::set);
    FuncRegistration::new_index_getter()
        .with_purity(true)
        .register_into_engine(engine, StateList::get);
    FuncRegistration::new_index_setter()
        .with_purity(true)
        .register_into_engine(engine, StateList::set);

    let pure = |name: &str| FuncRegistration::new(name).with_purity(true);
    pure("contains").register_into_engine(engine, |map: &mut StateMap, key: ImmutableString| {
        map.contains(&key)
    });
    pure("contains").register_into_engine(
        engine,
        |context: NativeCallContext, list: &mut StateList, value: Dynamic| {
            list.contains(&context, &value)
        },
    );
    pure("len").register_into_engine(engine, |map: &mut StateMap| -> ScriptResult<INT> {
        Ok(map.0.lock()?.size().entries as INT)
    });
    pure("len").register_into_engine(engine, |list: &mut StateList| -> ScriptResult<INT> {
        Ok(list.len()? as INT)
    });
    pure("is_empty").register_into_engine(engine, |map: &mut StateMap| -> ScriptResult<bool> {
        Ok(map.0.lock()?.size().entries == 0)
    });
    pure("is_empty").register_into_engine(engine, |list: &mut StateList| -> ScriptResult<bool> {
        Ok(list.len()? == 0)
    });
    pure("keys").register_into_engine(engine, StateMap::keys);
    pure("values").register_into_engine(engine, StateMap::values);
    pure("remove").register_into_engine(engine, |map: &mut StateMap, key: ImmutableString| {
        map.0.take(Slot::Key(key))
    });
    pure("remove").register_into_engine(engine, StateList::remove);
    pure("clear").register_into_engine(engine, |map: &mut StateMap| map.0.clear());
    pure("clear").register_into_engine(engine, |list: &mut StateList| list.0.clear());
    pure("push").register_into_engine(engine, StateList::push);
    pure("insert").register_into_engine(engine, StateList::insert);
    pure("append").register_into_engine(engine, StateList::append);
    pure("+=").register_into_engine(engine, StateList::append);
    pure("+=").register_into_engine(engine, StateList::push);
    pure("pop").register_into_engine(engine, |list: &mut StateList| list.remove(-1));
    pure("shift").register_into_engine(engine, |list: &mut StateList| list.remove(0));
    pure("mixin").register_into_engine(engine, StateMap::mixin);
    pure("+=").register_into_engine(engine, StateMap::mixin);

    macro_rules! compare {
        ($node:ty) => {
            engine.register_fn("==", |context: NativeCallContext, a: $node, b: Dynamic| {
                equal(&context, Dynamic::from(a), b)
            });
            engine.register_fn("==", |context: NativeCallContext, a: Dynamic, b: $node| {
                equal(&context, a, Dynamic::from(b))
            });
            engine.register_fn("!=", |context: NativeCallContext, a: $node, b: Dynamic| {
                equal(&context, Dynamic::from(a), b).map(|equal| !equal)
            });
            engine.register_fn("!=", |context: NativeCallContext, a: Dynamic, b: $node| {
                equal(&context, a, Dynamic::from(b)).map(|equal| !equal)
            });
            engine.register_fn("to_string", |node: &mut $node| {
                display(&Dynamic::from(node.clone()))
            });
            engine.register_fn("to_debug", |node: &mut $node| {
                display(&Dynamic::from(node.clone()))
            });
        };
    }
    compare!(StateMap);
    compare!(StateList);

    #[allow(deprecated)]
    engine.on_missing_function(on_a_copy);
}

/// Calls a function state has none of its own for (`filter`, `sort`, one
/// that takes a plain map…) with copies of the state it was given. A method
/// that changed its copy of its object writes it back.
fn on_a_copy(
    name: &str,
    args: &mut [&mut Dynamic],
    is_method_call: bool,
    mut context: EvalContext,
) -> ScriptResult<Option<Dynamic>> {
    if NATIVE.contains(&name) || !args.iter().any(|arg| is_node(arg)) {
        return Ok(None);
    }
    let object = if is_method_call {
        args.first().and_then(|arg| node_of(arg))
    } else {
        None
    };
    let mut copies = args
        .iter()
        .map(|arg| plain(arg))
        .collect::<ScriptResult<Vec<Dynamic>>>()?;
    let before = object.as_ref().map(|_| copies[0].clone());
    let mut refs: Vec<&mut Dynamic> = copies.iter_mut().collect();
    let result = context.call_fn_raw(name, is_method_call, is_method_call, &mut refs)?;
    if let (Some(node), Some(before)) = (object, before)
        && !same(&before, &copies[0])
    {
        let after = copies.swap_remove(0);
        node.clear()?;
        if after.is_map() {
            StateMap(node).mixin(after.cast::<Map>())?;
        } else if after.is_array() {
            StateList(node).append(after.cast::<Array>())?;
        }
    }
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::{Change, Command, ConferenceCommand, RoomState};
    use crate::rules::{RoomRules, Rule, RuleBinding, RuleEngine, RuleSet};

    /// A room running one rule, whose `on_connect` is called on each `call`.
    struct Room {
        rules: RoomRules,
        room: Arc<RoomState>,
    }

    impl Room {
        fn new(limits: Limits, source: &str) -> Room {
            let engine = Arc::new(RuleEngine::new(limits));
            let rule = Rule::compile(&engine, "probe", Path::new("rules/probe.rhai"), source)
                .unwrap_or_else(|err| panic!("{err}"));
            let set = Arc::new(RuleSet::new(engine, [rule]));
            Room {
                rules: RoomRules::new("hall", set, &[RuleBinding::named("probe")]).unwrap(),
                room: Arc::new(RoomState::new()),
            }
        }

        /// Calls `on_connect`; returns the messages it sent, or its failure.
        fn call(&mut self) -> Result<Vec<String>, String> {
            let synced = [Change::Synced { initial: true }];
            let intents = self.rules.on_changes(&self.room, &synced, "sync", 0.0);
            if let Some(failure) = self.rules.drain_failures().pop() {
                return Err(failure.error.to_string());
            }
            Ok(intents
                .iter()
                .map(|intent| match &intent.command {
                    Command::Conference(ConferenceCommand::Message(message)) => {
                        message.payload.clone()
                    }
                    other => other.to_string(),
                })
                .collect())
        }
    }

    fn said(source: &str) -> Vec<String> {
        Room::new(Limits::default(), source)
            .call()
            .unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn maps_and_lists_in_state_are_read_in_place() {
        let sent = said(
            r#"fn on_connect() {
                state.seen = #{ ann: true };
                let seen = state.seen;
                seen.bob = true;
                room.message(`${"bob" in state.seen} ${"cat" in state.seen} ${state.seen.len()}`);
                room.message(`${state.seen == ()} ${() == state.seen} ${state.gone == ()} ${state.seen != ()}`);
                room.message(`${type_of(state.seen)} ${type_of(state.list ?? [])} ${state.gone ?? "none"}`);
            }"#,
        );
        assert_eq!(
            sent,
            [
                r#"true false 2"#,
                r#"false false true true"#,
                r#"map array none"#
            ]
        );
    }

    #[test]
    fn closures_may_read_state_inside_methods_on_state() {
        let sent = said(
            r#"fn on_connect() {
                state.names = ["Ann", "Bob", "Cat"];
                state.last = "Bob";
                state.order = #{ Ann: 3, Bob: 1, Cat: 2 };
                let others = state.names.filter(|n| n != state.last);
                room.message(`${others}`);
                state.names.sort(|a, b| state.order[a] - state.order[b]);
                room.message(`${state.names}`);
                state.names.retain(|n| n != state.last);
                room.message(`${state.names} ${state.names.len()}`);
                room.message(`${state.names.map(|n| state.order[n] + state.names.len())}`);
            }"#,
        );
        assert_eq!(
            sent,
            [
                r#"["Ann", "Cat"]"#,
                r#"["Bob", "Cat", "Ann"]"#,
                r#"["Cat", "Ann"] 2"#,
                r#"[4, 5]"#,
            ]
        );
    }

    #[test]
    fn nested_maps_and_lists_change_in_place() {
        let sent = said(
            r#"fn on_connect() {
                state.a = #{ b: #{ c: [1] } };
                state.a.b.c.push(2);
                state.a.b.c[0] = 5;
                state.a.b.c += [7, 8];
                state.a.b.d = "x";
                state.a.b.e = 1;
                state.a.b.e += 1;
                state.a["b"].c[-1] = 9;
                let total = 0;
                for n in state.a.b.c { total += n; }
                room.message(`${state.a} ${total}`);
                room.message(`${state.a.b.c.pop()} ${state.a.b.c.shift()} ${state.a.b.c}`);
                state.a.b.remove("d");
                room.message(`${state.a.b.keys()} ${state.a.b.c.contains(7)} ${9 in state.a.b.c}`);
            }"#,
        );
        assert_eq!(
            sent,
            [
                r##"#{"b": #{"c": [5, 2, 7, 9], "d": "x", "e": 2}} 23"##,
                r#"9 5 [2, 7]"#,
                r#"["c", "e"] true false"#,
            ]
        );
    }

    #[test]
    fn state_lasts_between_calls_and_stored_state_is_a_copy() {
        let mut room = Room::new(
            Limits::default(),
            r#"fn on_connect() {
                if state.a == () {
                    state.a = #{ x: 1 };
                    state.b = state.a;
                    state.b.x = 2;
                    state.a.self = state.a;
                }
                state.a.x += 10;
                room.message(`${state.a.x} ${state.b.x} ${state.a.self.x}`);
            }"#,
        );
        assert_eq!(room.call().unwrap(), [r#"11 2 1"#]);
        assert_eq!(room.call().unwrap(), [r#"21 2 1"#]);
    }

    #[test]
    fn state_stays_within_the_sandbox_limits() {
        let limits = Limits {
            max_map_size: 100,
            max_array_size: 50,
            max_string_size: 1000,
            ..Limits::default()
        };
        let mut room = Room::new(
            limits,
            r#"fn on_connect() {
                state.round = (state.round ?? 0) + 1;
                state.m = #{};
                state.l = [];
                switch state.round {
                    1 => { for n in 0..200 { state.m[`${n}`] = n; } }
                    2 => { for n in 0..20 { state.l.push([n, n]); } }
                    3 => { for n in 0..20 { let text = "0123456789"; text.pad(100, "x"); state.l.push(text); } }
                    4 => { for n in 0..90 { state.m[`${n}`] = n; } room.message(`${state.m.len()}`); }
                }
            }"#,
        );
        let err = room.call().unwrap_err();
        assert!(
            err.starts_with(
                "rules/probe.rhai:6:53: in `on_connect`: `state` grew larger than allowed"
            ),
            "{err}"
        );
        let err = room.call().unwrap_err();
        assert!(err.contains("`state` grew larger than allowed"), "{err}");
        let err = room.call().unwrap_err();
        assert!(err.contains("`state` grew larger than allowed"), "{err}");
        assert_eq!(room.call().unwrap(), [r#"90"#], "clearing gives room back");
    }

    #[test]
    fn each_room_has_its_own_state() {
        let source = r#"fn on_connect() {
            state.calls = (state.calls ?? 0) + 1;
            state.list = (state.list ?? []) + [state.calls];
            room.message(`${state.list}`);
        }"#;
        let mut one = Room::new(Limits::default(), source);
        let mut two = Room::new(Limits::default(), source);
        one.call().unwrap();
        assert_eq!(one.call().unwrap(), [r#"[1, 2]"#]);
        assert_eq!(two.call().unwrap(), [r#"[1]"#]);
    }

    #[test]
    fn state_passes_for_a_plain_map_where_one_is_expected() {
        let sent = said(
            r#"fn on_connect() {
                state.options = #{ role: "guest" };
                state.names = ["b", "a"];
                room.message(state.names);
                room.message(`${state.names.index_of("a")} ${state.names + ["c"]} ${state.options.role}`);
                let copy = state.names.sort();
                room.message(`${state.names} ${state.options.values()}`);
                room.dial("sip:x@example.com", state.options);
            }"#,
        );
        assert_eq!(
            sent,
            [
                r#"["b", "a"]"#,
                r#"1 ["b", "a", "c"] guest"#,
                r#"["a", "b"] ["guest"]"#,
                "dial sip:x@example.com",
            ]
        );
    }

    #[test]
    fn state_itself_cannot_be_replaced() {
        let err = Room::new(Limits::default(), "fn on_connect() { state = #{}; }")
            .call()
            .unwrap_err();
        assert!(err.contains("constant"), "{err}");
    }
}
