//! Renders the step DAG as Mermaid or Graphviz dot.

use crate::plan::Plan;

pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    for s in &plan.steps {
        out.push_str(&format!(
            "    {}[\"{}<br/><i>{}</i>\"]\n",
            node_id(&s.id),
            s.id,
            s.type_name
        ));
    }
    for s in &plan.steps {
        for &i in &s.inputs {
            out.push_str(&format!(
                "    {} --> {}\n",
                node_id(&plan.steps[i].id),
                node_id(&s.id)
            ));
        }
    }
    out
}

/// A Mermaid node id: step ids are identifiers, except implicit check steps (`x.checks`).
fn node_id(id: &str) -> String {
    id.replace('.', "__")
}

pub fn dot(plan: &Plan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box];\n",
        plan.name.replace('"', "\\\"")
    );
    for s in &plan.steps {
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\\n({})\"];\n",
            s.id, s.id, s.type_name
        ));
    }
    for s in &plan.steps {
        for &i in &s.inputs {
            out.push_str(&format!("    \"{}\" -> \"{}\";\n", plan.steps[i].id, s.id));
        }
    }
    out.push_str("}\n");
    out
}
