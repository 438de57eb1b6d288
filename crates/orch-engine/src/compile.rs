//! Compiles a pipeline file into a checked [`Plan`] in one pass that reports *every*
//! problem: YAML structure, unknown keys, params, unknown step types and inputs, duplicate
//! ids, cycles (with their path) and column/type errors along the graph.

use crate::plan::{Plan, PlannedStep};
use orch_spec::diag::Severity;
use orch_spec::model::COMMON_STEP_KEYS;
use orch_spec::{
    suggest, yaml, Ctx, Diagnostic, Diagnostics, Fields, PipelineDecl, Schema, Source, StepDecl,
};
use orch_steps::{registry, Role};
use petgraph::graph::DiGraph;
use std::collections::HashMap;

/// Most steps a pipeline may have. Plans are built recursively along fused chains; this
/// bound keeps hostile or generated pipelines far from the stack's limit.
pub const MAX_STEPS: usize = 1000;

/// What the caller passes in besides the file: param overrides and "today".
#[derive(Debug, Clone)]
pub struct CompileOptions {
    pub params: Vec<(String, String)>,
    /// The date `today` resolves to for date params (UTC, read once at start-up).
    pub today: chrono::NaiveDate,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            params: Vec::new(),
            today: chrono::Utc::now().date_naive(),
        }
    }
}

/// A pipeline that failed to compile, with everything wrong in it.
#[derive(Debug)]
pub struct CompileError {
    pub source: Source,
    pub diagnostics: Vec<Diagnostic>,
}

impl CompileError {
    pub fn render(&self, color: bool) -> String {
        let mut out = self.source.render(&self.diagnostics, color);
        let n = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        out.push_str(&format!(
            "{}: {n} error{} found; nothing was run\n",
            self.source.name,
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

/// Reads and compiles a pipeline file.
pub fn compile_file(
    path: &std::path::Path,
    opts: &CompileOptions,
) -> Result<(Plan, Vec<Diagnostic>), CompileError> {
    let name = path.display().to_string();
    let fail = |d: Diagnostic| CompileError {
        source: Source::new(name.clone(), String::new()),
        diagnostics: vec![d],
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(
            Diagnostic::error(format!("cannot read the pipeline file: {e}")).hint("check the path"),
        )
    })?;
    if meta.len() as usize > yaml::MAX_FILE_BYTES {
        return Err(fail(Diagnostic::error(format!(
            "the pipeline file is {} bytes; pipeline files are limited to {} bytes",
            meta.len(),
            yaml::MAX_FILE_BYTES
        ))));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        fail(Diagnostic::error(format!(
            "cannot read the pipeline file: {e}"
        )))
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            return Err(CompileError {
                source: Source::new(name, text),
                diagnostics: vec![Diagnostic::error("the pipeline file is not valid UTF-8")
                    .at(orch_spec::Span::new(at, at + 1))
                    .hint("save the file as UTF-8")],
            });
        }
    };
    compile(Source::new(name, text), opts)
}

/// Compiles pipeline text. On success, also returns the warnings.
pub fn compile(
    source: Source,
    opts: &CompileOptions,
) -> Result<(Plan, Vec<Diagnostic>), CompileError> {
    let mut diags = Diagnostics::new();
    let plan = compile_inner(&source, opts, &mut diags);
    diags.sort();
    match plan {
        Some(plan) if !diags.has_errors() => Ok((plan, diags.into_vec())),
        _ => Err(CompileError {
            source,
            diagnostics: diags.into_vec(),
        }),
    }
}

fn compile_inner(source: &Source, opts: &CompileOptions, diags: &mut Diagnostics) -> Option<Plan> {
    let root = match yaml::parse(&source.text) {
        Ok(r) => r,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let decl = PipelineDecl::from_yaml(&root, diags);
    let decl = decl?;
    if decl.steps.len() > MAX_STEPS {
        diags.push(
            Diagnostic::error(format!(
                "the pipeline has {} steps; a pipeline may have at most {MAX_STEPS}",
                decl.steps.len()
            ))
            .hint("split it into several pipelines that read each other's outputs"),
        );
        return None;
    }
    let params = decl.resolve_params(&opts.params, opts.today, diags);
    let mut ctx = Ctx::new(&params);

    // 0. `checks:` sections on steps become implicit check steps.
    let (steps, implicit) = expand_checks(decl.steps, &ctx);
    // Owners of a section (not writes): the steps that read them read the checked data.
    let mut checked_by: Vec<Option<usize>> = vec![None; steps.len()];
    for (k, imp) in implicit.iter().enumerate() {
        if let Some(imp) = imp.as_ref().filter(|imp| !imp.writes) {
            checked_by[imp.owner] = Some(k);
        }
    }

    // 1. Decode every step; remember ids for input resolution.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut decoded = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(imp) = &implicit[i] {
            ids.insert(&s.id, i);
            let owner = &steps[imp.owner].id;
            let step =
                orch_steps::steps::check::decode_section(s, &s.node, owner, imp.writes, &mut ctx);
            decoded.push(step.map(|st| (orch_steps::steps::check::TYPE.name, st)));
            continue;
        }
        if let Some(&first) = ids.get(s.id.as_str()) {
            ctx.error(
                Diagnostic::error(format!("duplicate step id `{}`", s.id))
                    .at(s.id_span)
                    .hint(format!(
                        "step ids must be unique; the first `{}` is step {}",
                        s.id,
                        first + 1
                    )),
            );
        } else {
            ids.insert(&s.id, i);
        }
        let Some(ty) = registry::lookup(&s.ty) else {
            ctx.error(
                Diagnostic::error(format!("unknown step type `{}`", s.ty))
                    .at(s.ty_span)
                    .maybe_hint(suggest::hint(&s.ty, registry::names()))
                    .hint(format!(
                        "step types are: {}",
                        registry::names().collect::<Vec<_>>().join(", ")
                    )),
            );
            decoded.push(None);
            continue;
        };
        if !ty.arity.accepts(s.inputs.len()) {
            let span = s.inputs.first().map_or(s.ty_span, |(_, sp)| *sp);
            ctx.error(
                Diagnostic::error(format!(
                    "a `{}` step takes {}, but `{}` has {}",
                    ty.name,
                    ty.arity.describe(),
                    s.id,
                    s.inputs.len()
                ))
                .at(span)
                .hint(if s.inputs.is_empty() {
                    "name its inputs with `inputs: [step_id, ...]`".to_string()
                } else {
                    "check `inputs`".to_string()
                }),
            );
        }
        let Some(mut f) = Fields::new(&s.node, format!("step `{}`", s.id), &mut ctx) else {
            decoded.push(None);
            continue;
        };
        for k in COMMON_STEP_KEYS {
            f.take(k);
        }
        // Taken out by `expand_checks`; listed among the valid keys of every step.
        f.take(CHECKS_KEY);
        let step = (ty.decode)(s, &mut f, &mut ctx);
        f.finish(&mut ctx);
        decoded.push(step.map(|st| (ty.name, st)));
    }

    // 2. Resolve inputs. A step that reads the owner of a `checks:` section reads its
    //    implicit check step instead.
    let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    let all_ids: Vec<&str> = steps
        .iter()
        .zip(&implicit)
        .filter(|(_, imp)| imp.is_none())
        .map(|(s, _)| s.id.as_str())
        .collect();
    for (i, s) in steps.iter().enumerate() {
        for (name, span) in &s.inputs {
            match ids.get(name.as_str()) {
                Some(&j) if j == i => ctx.error(
                    Diagnostic::error(format!("step `{}` lists itself as an input", s.id))
                        .at(*span)
                        .hint("a step reads other steps' results"),
                ),
                Some(&j) => inputs[i].push(match checked_by[j] {
                    Some(k) if k != i => k,
                    _ => j,
                }),
                None if implicit[i].is_some() => ctx.error(
                    Diagnostic::error(format!(
                        "`to: {name}` in the `checks` of step `{}` is not a step",
                        implicit[i]
                            .as_ref()
                            .map_or("", |imp| steps[imp.owner].id.as_str())
                    ))
                    .at(*span)
                    .maybe_hint(suggest::hint(name, all_ids.iter().copied()))
                    .hint(format!("steps are: {}", all_ids.join(", "))),
                ),
                None => ctx.error(
                    Diagnostic::error(format!("step `{}` reads the unknown input `{name}`", s.id))
                        .at(*span)
                        .maybe_hint(suggest::hint(name, all_ids.iter().copied()))
                        .hint(format!("steps are: {}", all_ids.join(", "))),
                ),
            }
        }
    }

    // 3. The graph, and cycles with their path.
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<_> = (0..steps.len()).map(|i| graph.add_node(i)).collect();
    for (i, ins) in inputs.iter().enumerate() {
        for &j in ins {
            graph.add_edge(nodes[j], nodes[i], ());
        }
    }
    let order: Vec<usize> = match petgraph::algo::toposort(&graph, None) {
        Ok(o) => o.into_iter().map(|n| graph[n]).collect(),
        Err(_) => {
            for cycle in cycles(&graph) {
                let path: Vec<&str> = cycle.iter().map(|&i| steps[i].id.as_str()).collect();
                let first = cycle[0];
                ctx.error(
                    Diagnostic::error(format!(
                        "the steps form a cycle: {} -> {}",
                        path.join(" -> "),
                        path[0]
                    ))
                    .at(steps[first].id_span)
                    .hint("a step cannot depend on its own result; remove one of these inputs"),
                );
            }
            // Keep checking the acyclic part of the graph (steps fed by a cycle get no
            // schema and are skipped below).
            acyclic_order(&inputs)
        }
    };

    // 4. Schemas, in dependency order; a step whose inputs failed is skipped quietly so one
    //    mistake does not cascade into many.
    let mut schemas: Vec<Option<Schema>> = vec![None; steps.len()];
    for &i in &order {
        let Some((_, step)) = &decoded[i] else {
            continue;
        };
        let ins: Option<Vec<&Schema>> = inputs[i].iter().map(|&j| schemas[j].as_ref()).collect();
        let Some(ins) = ins else { continue };
        if inputs[i].len() != steps[i].inputs.len() {
            continue;
        }
        let ty = registry::lookup(&steps[i].ty);
        if ty.is_some_and(|t| !t.arity.accepts(ins.len())) {
            continue;
        }
        schemas[i] = step.schema(&ins, &mut ctx.diags);
    }

    // 5. Warn about results nobody uses.
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, ins) in inputs.iter().enumerate() {
        for &j in ins {
            if !consumers[j].contains(&i) {
                consumers[j].push(i);
            }
        }
    }
    for (i, s) in steps.iter().enumerate() {
        // Sinks and data checks are ends in themselves.
        let is_sink = decoded[i]
            .as_ref()
            .is_some_and(|(_, st)| st.role() == Role::Sink || st.must_materialize());
        if consumers[i].is_empty() && !is_sink && decoded[i].is_some() {
            ctx.diags.push(
                Diagnostic::warning(format!("the result of step `{}` is never used", s.id))
                    .at(s.id_span)
                    .hint("read it from another step, add a `write` step, or remove it"),
            );
        }
    }

    let ctx_diags = ctx.diags;
    let failed = ctx_diags.has_errors();
    diags.extend(ctx_diags);
    if failed {
        return None;
    }
    let mut planned = Vec::with_capacity(steps.len());
    for (i, (s, d)) in steps.iter().zip(decoded).enumerate() {
        let (type_name, step) = d?;
        planned.push(PlannedStep {
            id: s.id.clone(),
            type_name,
            inputs: inputs[i].clone(),
            consumers: consumers[i].clone(),
            step,
            schema: schemas[i].clone()?,
            span: s.id_span,
            cache: s.cache,
        });
    }
    // Tell each step which source files its first input comes from (for messages).
    for i in 0..planned.len() {
        if let Some(files) = upstream_files(&planned, i) {
            planned[i].step.set_upstream_files(files);
        }
    }
    // Whether anything that reads a step cares about the order of its rows (an aggregate
    // sorts its groups only then).
    for i in 0..planned.len() {
        let matters = planned[i].consumers.iter().any(|&c| {
            let reader = &planned[c];
            reader
                .inputs
                .iter()
                .enumerate()
                .filter(|&(_, &j)| j == i)
                .any(|(pos, _)| {
                    reader.step.input_order_matters(pos) && !unique_right_side(&planned, c, pos, i)
                })
        });
        planned[i].step.set_row_order_matters(matters);
    }
    Some(Plan {
        name: decl.name,
        description: decl.description,
        source: source.clone(),
        params,
        steps: planned,
        order,
        graph,
    })
}

/// Whether step `i` is the right side (`pos` 1) of join `c` (inner or left), joined on
/// exactly its group keys: each left row then meets at most one of its rows, and their order
/// cannot show in the join's output.
fn unique_right_side(planned: &[PlannedStep], c: usize, pos: usize, i: usize) -> bool {
    let (join, right) = (&planned[c].step, &planned[i].step);
    // Only joins have join keys and only aggregates group keys.
    let mut keys = right.group_keys();
    match join.join_keys() {
        Some((_, mut right_on)) if pos == 1 && !keys.is_empty() => {
            right_on.sort();
            keys.sort();
            right_on == keys && join.follows_left_order()
        }
        _ => false,
    }
}

/// The key of a `checks:` section on a step that is not a `check` step.
const CHECKS_KEY: &str = "checks";

/// An implicit check step made from a `checks:` section.
struct Implicit {
    /// The step the section was written on.
    owner: usize,
    /// The owner is a `write`: its input is checked, before anything is written.
    writes: bool,
}

/// `checks:` on a step other than `check` is sugar for an implicit check step, `<id>.checks`
/// (not a valid step id, so it cannot clash), placed right after it (before it for a
/// `write`). It checks the step's
/// output, and the steps that read the step read the implicit step instead (see the input
/// resolution); on a `write` it checks the write's input, and the write reads it, so a
/// failing check stops the run before anything is written. Its inputs after the first are
/// the `to` steps of its `relationships` checks. The section is taken out of the step's own
/// mapping, so the step type never sees it. Returns the steps and, for each, whether it is
/// implicit.
fn expand_checks(decls: Vec<StepDecl>, ctx: &Ctx<'_>) -> (Vec<StepDecl>, Vec<Option<Implicit>>) {
    let mut steps = Vec::with_capacity(decls.len());
    let mut implicit = Vec::with_capacity(decls.len());
    for mut s in decls {
        let section = match &mut s.node.value {
            yaml::Value::Map(entries) if s.ty != checks_type() => entries
                .iter()
                .position(|(k, _)| k.as_scalar() == Some(CHECKS_KEY))
                .map(|at| entries.remove(at)),
            _ => None,
        };
        let Some((key, list)) = section else {
            steps.push(s);
            implicit.push(None);
            continue;
        };
        let writes = s.ty == orch_steps::steps::write::TYPE.name;
        let first = if writes {
            // A write with a wrong number of inputs is reported as such; nothing to check.
            match s.inputs.as_slice() {
                [one] => one.clone(),
                _ => {
                    steps.push(s);
                    implicit.push(None);
                    continue;
                }
            }
        } else {
            (s.id.clone(), key.span)
        };
        let mut inputs = vec![first];
        for t in orch_steps::steps::check::relationship_targets(&list, ctx) {
            if !inputs.iter().any(|(n, _)| *n == t.0) {
                inputs.push(t);
            }
        }
        let check = StepDecl {
            id: format!("{}.{CHECKS_KEY}", s.id),
            id_span: key.span,
            ty: checks_type().to_string(),
            ty_span: key.span,
            inputs,
            description: None,
            cache: false,
            node: list,
        };
        if writes {
            // Before the write, in the order it runs.
            s.inputs = vec![(check.id.clone(), key.span)];
            let owner = steps.len() + 1;
            steps.push(check);
            implicit.push(Some(Implicit { owner, writes }));
            steps.push(s);
            implicit.push(None);
        } else {
            let owner = steps.len();
            steps.push(s);
            implicit.push(None);
            steps.push(check);
            implicit.push(Some(Implicit { owner, writes }));
        }
    }
    (steps, implicit)
}

fn checks_type() -> &'static str {
    orch_steps::steps::check::TYPE.name
}

/// The files of the `load` steps step `i`'s first input comes from through single-input
/// steps (and through the first input of `check` steps, which pass it on unchanged).
fn upstream_files(steps: &[PlannedStep], i: usize) -> Option<Vec<String>> {
    let mut cur = *steps[i].inputs.first()?;
    for _ in 0..steps.len() {
        let s = &steps[cur];
        if s.role() == Role::Source {
            return Some(s.step.reads());
        }
        match s.inputs.as_slice() {
            [one] => cur = *one,
            [first, ..] if s.type_name == checks_type() => cur = *first,
            _ => return None,
        }
    }
    None
}

/// Kahn's algorithm: every step whose inputs can all be ordered, in dependency order.
fn acyclic_order(inputs: &[Vec<usize>]) -> Vec<usize> {
    let mut done = vec![false; inputs.len()];
    let mut order = Vec::new();
    loop {
        let before = order.len();
        for i in 0..inputs.len() {
            if !done[i] && inputs[i].iter().all(|&j| done[j]) {
                done[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            return order;
        }
    }
}

/// One cycle per strongly connected component that has one, as a path of step indices.
fn cycles(graph: &DiGraph<usize, ()>) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for scc in petgraph::algo::tarjan_scc(graph) {
        if scc.len() < 2 {
            continue;
        }
        // Shortest path from `start` back to itself inside the component (BFS).
        let start = *scc.iter().min_by_key(|n| graph[**n]).unwrap_or(&scc[0]);
        let mut parent: HashMap<petgraph::graph::NodeIndex, petgraph::graph::NodeIndex> =
            HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        while let Some(cur) = queue.pop_front() {
            let mut next: Vec<_> = graph.neighbors(cur).filter(|n| scc.contains(n)).collect();
            next.sort_by_key(|n| graph[*n]);
            if next.contains(&start) {
                last = Some(cur);
                break;
            }
            for n in next {
                if n != start && !parent.contains_key(&n) {
                    parent.insert(n, cur);
                    queue.push_back(n);
                }
            }
        }
        let mut path = Vec::new();
        let mut cur = last;
        while let Some(c) = cur {
            path.push(c);
            cur = if c == start {
                None
            } else {
                parent.get(&c).copied()
            };
        }
        path.reverse();
        out.push(path.into_iter().map(|n| graph[n]).collect());
    }
    out
}
