//! `usher bench pipeline`: events per second through decode, room state,
//! every rule and planning, on one core.
//!
//! Each round replays the same frames into a fresh room: JSON decode →
//! `RoomState::apply` → the room's rules → `plan` → intents (nothing is
//! sent). Decode-only and decode-plus-state rounds over the same frames
//! alternate with them, so the rates are measured side by side on the same
//! machine at the same time, and their ratios mean something on a noisy
//! machine. Medians are reported, with the time spent in each rule.
//!
//! With `compare_state`, two more kinds of rounds run alongside: the same
//! rules plus a rule keeping a roster in `state` written the natural way
//! (`examples/bench/natural.rhai`), and plus the same rule written the
//! careful way (`examples/bench/careful.rhai`), so what the way a rule is
//! written costs is measured, not guessed.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::workload::{self, Frame};
use crate::model::RoomState;
use crate::rules::{RoomRules, Rule, RuleBinding, RuleSet};
use crate::runtime::plan::plan;

/// The pipeline's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    /// Events per second through the whole pipeline (median round).
    pub events_per_sec: f64,
    /// Events per second through JSON decode alone (median round).
    pub decode_only_events_per_sec: f64,
    /// Events per second through decode and room state, without rules.
    pub state_only_events_per_sec: f64,
    /// `events_per_sec / decode_only_events_per_sec`.
    pub ratio_to_decode: f64,
    /// Events per round.
    pub events: usize,
    /// Rounds of each kind.
    pub rounds: usize,
    /// Commands the rules asked for and planning kept, per round.
    pub commands_per_round: usize,
    /// Rule calls that failed, per round.
    pub rule_errors_per_round: usize,
    /// The natural and careful ways of using `state`, if compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateComparison>,
}

/// The same rule written two ways, each added to the rules under test.
#[derive(Debug, Clone, Serialize)]
pub struct StateComparison {
    /// Events per second with the rule written the natural way.
    pub natural_events_per_sec: f64,
    /// Events per second with the rule written the careful way.
    pub careful_events_per_sec: f64,
    /// `careful_events_per_sec / natural_events_per_sec`: how much faster
    /// the careful way is.
    pub careful_to_natural: f64,
}

/// The benchmark's rule pair: one rule keeping a roster in `state`, written
/// the natural way and the careful way.
pub const STATE_RULES: [(&str, &str); 2] = [
    (
        "state_natural",
        include_str!("../../examples/bench/natural.rhai"),
    ),
    (
        "state_careful",
        include_str!("../../examples/bench/careful.rhai"),
    ),
];

/// Rules and bindings run together in one kind of round.
struct Setup {
    set: Arc<RuleSet>,
    bindings: Vec<RuleBinding>,
}

/// `bindings` plus each of the state rules, in a set that has them.
fn state_setups(set: &Arc<RuleSet>, bindings: &[RuleBinding]) -> anyhow::Result<[Setup; 2]> {
    let mut rules = Vec::new();
    for (name, source) in STATE_RULES {
        let path = std::path::Path::new("examples/bench").join(format!("{name}.rhai"));
        rules.push(Rule::compile(set.engine(), name, &path, source)?);
    }
    let set = Arc::new(set.with(rules));
    Ok(STATE_RULES.map(|(name, _)| {
        let mut with_rule = bindings.to_vec();
        with_rule.push(RuleBinding::named(name));
        Setup {
            set: set.clone(),
            bindings: with_rule,
        }
    }))
}

/// Runs `rounds` rounds of each kind over `frames` with `bindings` from
/// `set` (and, with `compare_state`, with each state rule added), and prints
/// a table to `out`.
pub fn run(
    set: Arc<RuleSet>,
    bindings: &[RuleBinding],
    frames: &[Frame],
    rounds: usize,
    compare_state: bool,
    out: &mut dyn Write,
) -> anyhow::Result<PipelineReport> {
    anyhow::ensure!(!frames.is_empty(), "there are no events to replay");
    let mut decode = Vec::new();
    let mut state = Vec::new();
    let mut pipeline = Vec::new();
    let (mut commands, mut errors) = (0, 0);
    let mut per_rule = Vec::new();
    let setups = if compare_state {
        Vec::from(state_setups(&set, bindings)?)
    } else {
        Vec::new()
    };
    let mut compared: Vec<Vec<Duration>> = vec![Vec::new(); setups.len()];
    pipeline_round(&set, bindings, frames)?;
    for _ in 0..rounds {
        decode.push(decode_round(frames));
        state.push(state_round(frames));
        let round = pipeline_round(&set, bindings, frames)?;
        pipeline.push(round.took);
        commands = round.commands;
        errors = round.errors;
        per_rule = round.rules;
        for (setup, times) in setups.iter().zip(&mut compared) {
            let round = pipeline_round(&setup.set, &setup.bindings, frames)?;
            anyhow::ensure!(
                round.errors == 0,
                "the state benchmark rules failed {} times",
                round.errors
            );
            times.push(round.took);
            per_rule.extend(round.rules.last().cloned());
        }
    }
    let per_sec = |times: &mut Vec<Duration>| frames.len() as f64 / median(times).as_secs_f64();
    let decode_rate = per_sec(&mut decode);
    let state_rate = per_sec(&mut state);
    let pipeline_rate = per_sec(&mut pipeline);
    let compared_rates: Vec<f64> = compared.iter_mut().map(per_sec).collect();
    let comparison = match compared_rates[..] {
        [natural, careful] => Some(StateComparison {
            natural_events_per_sec: natural.round(),
            careful_events_per_sec: careful.round(),
            careful_to_natural: (careful / natural * 1000.0).round() / 1000.0,
        }),
        _ => None,
    };
    let report = PipelineReport {
        events_per_sec: pipeline_rate.round(),
        decode_only_events_per_sec: decode_rate.round(),
        state_only_events_per_sec: state_rate.round(),
        ratio_to_decode: (pipeline_rate / decode_rate * 1000.0).round() / 1000.0,
        events: frames.len(),
        rounds,
        commands_per_round: commands,
        rule_errors_per_round: errors,
        state: comparison.clone(),
    };
    writeln!(
        out,
        "pipeline: {} events a round, {rounds} rounds each, one core",
        frames.len()
    )?;
    writeln!(
        out,
        "rules: {}",
        bindings
            .iter()
            .map(|b| b.rule.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out)?;
    writeln!(out, "{:<34} {:>14} {:>10}", "", "events/s", "ns/event")?;
    for (label, rate) in [
        ("decode only", decode_rate),
        ("decode + state", state_rate),
        ("decode + state + rules + plan", pipeline_rate),
    ] {
        writeln!(out, "{label:<34} {:>14} {:>10.0}", group(rate), 1e9 / rate)?;
    }
    if let Some(comparison) = &comparison {
        for (label, rate) in [
            (
                "  + a state rule, natural",
                comparison.natural_events_per_sec,
            ),
            (
                "  + the same rule, careful",
                comparison.careful_events_per_sec,
            ),
        ] {
            writeln!(out, "{label:<34} {:>14} {:>10.0}", group(rate), 1e9 / rate)?;
        }
        writeln!(
            out,
            "{:<34} {:>14.3}",
            "careful / natural", comparison.careful_to_natural
        )?;
    }
    writeln!(
        out,
        "{:<34} {:>14.3}",
        "pipeline / decode", report.ratio_to_decode
    )?;
    writeln!(out, "{:<34} {:>14}", "commands kept per round", commands)?;
    writeln!(out, "{:<34} {:>14}", "rule errors per round", errors)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<34} {:>14} {:>10} {:>10}",
        "time in each rule (last round)", "calls", "µs/call", "ns/event"
    )?;
    for (rule, calls, busy) in &per_rule {
        let per_call = if *calls == 0 {
            0.0
        } else {
            busy.as_secs_f64() * 1e6 / *calls as f64
        };
        let per_event = busy.as_secs_f64() * 1e9 / frames.len() as f64;
        writeln!(
            out,
            "{rule:<34} {calls:>14} {per_call:>10.2} {per_event:>10.0}"
        )?;
    }
    Ok(report)
}

fn decode_round(frames: &[Frame]) -> Duration {
    let mut codec = workload::codec();
    let started = Instant::now();
    for frame in frames {
        let _ = black_box(codec.decode(black_box(&frame.wire)));
    }
    started.elapsed()
}

/// The clock the frames are replayed on: their `at` seconds after this.
const START: f64 = 1_800_000_000.0;

fn state_round(frames: &[Frame]) -> Duration {
    let mut state = RoomState::new();
    let mut codec = workload::codec();
    let started = Instant::now();
    for frame in frames {
        if let Ok(Some(event)) = codec.decode(&frame.wire) {
            black_box(state.apply_at(event, START + frame.at));
        }
    }
    started.elapsed()
}

struct Round {
    took: Duration,
    commands: usize,
    errors: usize,
    /// Each rule's name, calls and time spent in them.
    rules: Vec<(String, u64, Duration)>,
}

fn pipeline_round(
    set: &Arc<RuleSet>,
    bindings: &[RuleBinding],
    frames: &[Frame],
) -> anyhow::Result<Round> {
    let mut rules = RoomRules::new("bench@usher.test", set.clone(), bindings)?;
    let mut state = Arc::new(RoomState::new());
    let mut codec = workload::codec();
    let capabilities = workload::PLATFORM.capabilities();
    let (mut commands, mut errors) = (0, 0);
    let started = Instant::now();
    for frame in frames {
        let now = START + frame.at;
        while let Some(due) = rules.next_timer().filter(|due| *due <= now) {
            let intents = rules.fire_timers(&state, due);
            commands += plan(intents, &state, &[], &capabilities).send.len();
        }
        let Ok(Some(event)) = codec.decode(&frame.wire) else {
            continue;
        };
        let name = event.kind();
        let changes = Arc::make_mut(&mut state).apply_at(event, now);
        if changes.is_empty() {
            continue;
        }
        let intents = rules.on_changes(&state, &changes, name, now);
        errors += rules.drain_failures().len();
        commands += plan(intents, &state, &[], &capabilities).send.len();
    }
    let took = started.elapsed();
    Ok(Round {
        took,
        commands,
        errors,
        rules: rules
            .stats()
            .map(|(name, stats)| (name.to_owned(), stats.calls, stats.busy))
            .collect(),
    })
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `1234567.8` → `1,234,568`.
pub(super) fn group(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{shipped_rules_on, workload};
    use crate::rules::{Limits, RuleEngine};

    #[test]
    fn the_state_rules_run_cleanly_and_are_compared() {
        // A deadline no loaded machine trips: this test checks that the
        // rules run cleanly, not how fast (`usher bench pipeline` does).
        let patient = Limits {
            deadline: Duration::from_secs(60),
            ..Limits::default()
        };
        let (set, bindings) = shipped_rules_on(Arc::new(RuleEngine::new(patient))).unwrap();
        let frames = workload::lecture(3_000);
        for setup in state_setups(&set, &bindings).unwrap() {
            let round = pipeline_round(&setup.set, &setup.bindings, &frames).unwrap();
            assert_eq!(round.errors, 0);
            let (rule, calls, _) = round.rules.last().unwrap();
            assert!(
                rule.starts_with("state_") && *calls > 500,
                "{rule}: {calls}"
            );
        }
        let mut out = Vec::new();
        let report = run(set, &bindings, &frames, 1, true, &mut out).unwrap();
        let comparison = report.state.unwrap();
        assert!(comparison.natural_events_per_sec > 0.0 && comparison.careful_to_natural > 0.0);
        let table = String::from_utf8(out).unwrap();
        assert!(table.contains("careful / natural"), "{table}");
    }
}
