//! The pipeline file's top level: `name`, `description`, `params` and the list of `steps`.
//!
//! Step options are decoded later by each step type (see the step registry); here we only
//! read what every step shares: `id`, `type`, `inputs`.

use crate::decode::{Ctx, Fields};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::params::{ParamType, Params};
use crate::suggest;
use crate::yaml::Node;

/// Params every pipeline has, so `orchestrator run FILE` works with no flags.
pub const BUILTIN_PARAMS: &[(&str, ParamType, &str)] = &[
    ("input_dir", ParamType::Path, "data"),
    ("output_dir", ParamType::Path, "output"),
];

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    pub default: Option<String>,
    pub description: Option<String>,
    pub span: Span,
}

/// A step as written: the shared keys, plus its whole mapping for the step type to decode.
#[derive(Debug, Clone)]
pub struct StepDecl {
    pub id: String,
    pub id_span: Span,
    pub ty: String,
    pub ty_span: Span,
    pub inputs: Vec<(String, Span)>,
    pub description: Option<String>,
    /// `cache: true`: keep this step's result in the state folder for reuse.
    pub cache: bool,
    pub node: Node,
}

#[derive(Debug, Clone)]
pub struct PipelineDecl {
    pub name: String,
    pub description: Option<String>,
    pub params: Vec<ParamDecl>,
    pub steps: Vec<StepDecl>,
}

/// Keys shared by every step; step types must not use these names for options.
pub const COMMON_STEP_KEYS: &[&str] = &["id", "type", "inputs", "input", "description", "cache"];

impl PipelineDecl {
    /// Reads the top level, reporting every structural problem found. Returns `None` only
    /// when the file is not a mapping at all.
    pub fn from_yaml(root: &Node, diags: &mut Diagnostics) -> Option<PipelineDecl> {
        // Top-level keys contain no `${param}`: read them with an empty param set.
        let no_params = Params::default();
        let mut ctx = Ctx::new(&no_params);
        let Some(mut top) = Fields::new(root, "the pipeline file", &mut ctx) else {
            diags.extend(ctx.diags);
            return None;
        };
        let name = top
            .require("name", &mut ctx)
            .and_then(|n| ctx.string(n, "name"))
            .unwrap_or_default();
        let description = top
            .take("description")
            .and_then(|n| ctx.string(n, "description"));
        let params = top
            .take("params")
            .map(|n| read_params(n, &mut ctx))
            .unwrap_or_default();
        let mut steps = Vec::new();
        if let Some(list) = top.require("steps", &mut ctx) {
            if let Some(items) = ctx.seq(list, "steps") {
                if items.is_empty() {
                    ctx.error(
                        Diagnostic::error("the pipeline has no steps")
                            .at(list.span)
                            .hint("add at least a `load` and a `write` step"),
                    );
                }
                for item in items {
                    if let Some(s) = read_step(item, &mut ctx) {
                        steps.push(s);
                    }
                }
            }
        }
        top.finish(&mut ctx);
        diags.extend(ctx.diags);
        // Keep going even after errors: the compiler reports everything in one pass.
        Some(PipelineDecl {
            name,
            description,
            params,
            steps,
        })
    }

    /// Resolves every param: command-line override, else the declared default.
    /// Reports unknown overrides, missing values and ill-typed values, all at once.
    pub fn resolve_params(
        &self,
        overrides: &[(String, String)],
        today: chrono::NaiveDate,
        diags: &mut Diagnostics,
    ) -> Params {
        let mut params = Params::default();
        let mut decls: Vec<ParamDecl> = self.params.clone();
        for (name, ty, default) in BUILTIN_PARAMS {
            if !decls.iter().any(|d| d.name == *name) {
                decls.push(ParamDecl {
                    name: name.to_string(),
                    ty: *ty,
                    default: Some(default.to_string()),
                    description: None,
                    span: Span::default(),
                });
            }
        }
        for (name, _) in overrides {
            if !decls.iter().any(|d| &d.name == name) {
                let names: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
                diags.push(
                    Diagnostic::error(format!("--param `{name}` is not a param of this pipeline"))
                        .maybe_hint(suggest::hint(name, names.iter().copied()))
                        .hint(format!("params are: {}", names.join(", "))),
                );
            }
        }
        for d in &decls {
            let given = overrides
                .iter()
                .rev()
                .find(|(n, _)| n == &d.name)
                .map(|(_, v)| v);
            let (raw, from_cli) = match (given, &d.default) {
                (Some(v), _) => (v.as_str(), true),
                (None, Some(v)) => (v.as_str(), false),
                (None, None) => {
                    diags.push(
                        Diagnostic::error(format!("param `{}` has no value", d.name))
                            .at(d.span)
                            .hint(format!(
                                "pass `--param {}=<{}>` or give it a `default:`",
                                d.name, d.ty
                            )),
                    );
                    continue;
                }
            };
            match d.ty.check(raw, today) {
                Ok(v) => params.insert(&d.name, d.ty, v),
                Err(why) => {
                    // Keep the raw value so `${name}` still resolves: one error, not a cascade.
                    params.insert(&d.name, d.ty, raw.to_string());
                    let mut diag = Diagnostic::error(format!("param `{}`: {why}", d.name));
                    if !from_cli {
                        diag = diag.at(d.span);
                    }
                    diags.push(diag.hint(format!("`{}` is declared as {}", d.name, d.ty)));
                }
            }
        }
        params
    }
}

fn read_params(node: &Node, ctx: &mut Ctx<'_>) -> Vec<ParamDecl> {
    let mut out = Vec::new();
    let Some(entries) = ctx.entries(node, "params") else {
        return out;
    };
    for (name, span, v) in entries {
        if !is_identifier(&name) {
            ctx.error(
                Diagnostic::error(format!("`{name}` is not a valid param name"))
                    .at(span)
                    .hint("use letters, digits and `_`, starting with a letter"),
            );
            continue;
        }
        let what = format!("param `{name}`");
        let Some(mut f) = Fields::new(v, what.clone(), ctx) else {
            continue;
        };
        let ty = f.require("type", ctx).and_then(|n| {
            let t = ctx.choice(n, "type", ParamType::NAMES)?;
            ParamType::parse(&t)
        });
        let default = f.take("default").and_then(|n| ctx.string(n, "default"));
        let description = f
            .take("description")
            .and_then(|n| ctx.string(n, "description"));
        f.finish(ctx);
        if let Some(ty) = ty {
            out.push(ParamDecl {
                name,
                ty,
                default,
                description,
                span,
            });
        }
    }
    out
}

fn read_step(node: &Node, ctx: &mut Ctx<'_>) -> Option<StepDecl> {
    let mut f = Fields::new(node, "a step", ctx)?;
    let id_node = f.require("id", ctx);
    let id = id_node.and_then(|n| ctx.string(n, "id"));
    if let (Some(id), Some(n)) = (&id, id_node) {
        if !is_identifier(id) {
            ctx.error(
                Diagnostic::error(format!("step id `{id}` is not a valid name"))
                    .at(n.span)
                    .hint("use letters, digits and `_`, starting with a letter (ids are also table names in `sql` steps)"),
            );
        }
    }
    let ty_node = f.require("type", ctx);
    let ty = ty_node.and_then(|n| ctx.string(n, "type"));
    let mut inputs = Vec::new();
    match (f.take("inputs"), f.take("input")) {
        (Some(_), Some(n)) => ctx.error(
            Diagnostic::error("a step has both `inputs` and `input`")
                .at(n.span)
                .hint("use `inputs: [a, b]` (or `input: a` alone)"),
        ),
        (Some(n), None) | (None, Some(n)) => {
            inputs = ctx.strings(n, "inputs").unwrap_or_default();
        }
        (None, None) => {}
    }
    let description = f
        .take("description")
        .and_then(|n| ctx.string(n, "description"));
    let cache = f
        .take("cache")
        .and_then(|n| ctx.bool(n, "cache"))
        .unwrap_or(false);
    // Step-specific keys are checked by the step type's decoder, not here.
    Some(StepDecl {
        id: id?,
        id_span: id_node?.span,
        ty: ty?,
        ty_span: ty_node?.span,
        inputs,
        description,
        cache,
        node: node.clone(),
    })
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
