//! `strata graph`: the instance dependency graph as DOT.

use super::*;

pub(super) async fn graph(shell: &Shell, ws: &Workspace, flags: &PlanFlags) -> ops::OpResult<i32> {
    let mut flags = flags.clone();
    flags.refresh = false;
    let (planned, _guard) = make_plan(shell, ws, &Session::default(), &flags, 10, false, "graph").await?;
    let nodes: Vec<(String, Vec<String>)> = planned.plan.changes.iter().map(|c| (c.address.clone(), c.dependencies.clone())).collect();
    shell.out(&crate::graph::to_dot(&nodes));
    Ok(0)
}
