//! `strata workspace list|new|select|show|delete`, with Terraform's messages
//! and exit codes.

use super::*;
use crate::ops::DeleteRefusal;
use strata_state::StateError;

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// List workspaces; the current one is marked with `*`.
    List,
    /// Create a workspace and switch to it.
    New { name: String },
    /// Switch to another workspace.
    Select {
        name: String,
        /// Create the workspace if it does not exist.
        #[arg(long = "or-create")]
        or_create: bool,
    },
    /// Print the current workspace's name.
    Show,
    /// Delete a workspace (not the current one).
    Delete {
        name: String,
        /// Delete it even though it still manages objects; they are forgotten, not destroyed.
        #[arg(long)]
        force: bool,
    },
}

const NEW_WORKSPACE_NOTE: &str = "You're now on a new, empty workspace. Workspaces isolate their state,\n\
so if you run \"strata plan\" Strata will not see any existing state\nfor this configuration.";

fn missing(name: &str) -> OpError {
    OpError::Message(format!(
        "Workspace {name:?} doesn't exist.\n\nYou can create this workspace with the \"new\" subcommand\n\
         or include the \"-or-create\" flag with the \"select\" subcommand."
    ))
}

fn overridden(what: &str) -> OpError {
    OpError::Message(format!(
        "The selected workspace is currently overridden using the {} environment variable.\n\n\
         To {what}, either update this environment variable or unset it and then run this command again.",
        ops::WORKSPACE_ENV
    ))
}

pub(super) fn workspace_cmd(shell: &Shell, ws: &Workspace, cmd: WorkspaceCommand) -> ops::OpResult<i32> {
    match cmd {
        WorkspaceCommand::List => {
            let mut listing = String::new();
            for name in ws.backend.workspaces()? {
                listing.push_str(&format!("{} {name}\n", if name == ws.name { '*' } else { ' ' }));
            }
            listing.push('\n');
            shell.out(&listing);
        }
        WorkspaceCommand::Show => shell.out(&ws.name),
        WorkspaceCommand::New { name } => {
            if ops::workspace_overridden() && name != ws.name {
                return Err(overridden("create a new workspace"));
            }
            ws.backend.create_workspace(&name)?;
            ops::remember_workspace(&ws.dir, &name)?;
            shell.status(&format!("Created and switched to workspace {name:?}!\n\n{NEW_WORKSPACE_NOTE}"));
        }
        WorkspaceCommand::Select { name, or_create } => {
            if ops::workspace_overridden() {
                return Err(overridden("select a new workspace"));
            }
            strata_state::check_workspace_name(&name)?;
            if name == ws.name {
                return Ok(0);
            }
            if !ws.backend.workspaces()?.contains(&name) {
                if !or_create {
                    return Err(missing(&name));
                }
                ws.backend.create_workspace(&name)?;
                ops::remember_workspace(&ws.dir, &name)?;
                shell.status(&format!("Created and switched to workspace {name:?}!\n\n{NEW_WORKSPACE_NOTE}"));
                return Ok(0);
            }
            ops::remember_workspace(&ws.dir, &name)?;
            shell.status(&format!("Switched to workspace {name:?}."));
        }
        WorkspaceCommand::Delete { name, force } => match ops::delete_workspace(ws, &name, force) {
            Err(OpError::State(StateError::NoSuchWorkspace(_))) => return Err(missing(&name)),
            Err(e) => return Err(e),
            Ok(Err(DeleteRefusal::Current)) => {
                return Err(OpError::Message(format!(
                    "Workspace {name:?} is your active workspace.\n\n\
                     You cannot delete the currently active workspace. Please switch\nto another workspace and try again."
                )))
            }
            Ok(Err(DeleteRefusal::NotEmpty(instances))) => {
                let list: String = instances.iter().map(|a| format!("  - {a}\n")).collect();
                return Err(OpError::Message(format!(
                    "Workspace is not empty\n\nWorkspace {name:?} is currently tracking the following resource instances:\n{list}\n\
                     Deleting this workspace would cause Strata to lose track of any associated remote objects, which would \
                     then require you to delete them manually outside of Strata. You should destroy these objects with Strata \
                     before deleting the workspace.\n\n\
                     If you want to delete this workspace anyway, and have Strata forget about these managed objects, use the \
                     -force option to disable this safety check."
                )));
            }
            Ok(Ok(deleted)) => {
                shell.status(&format!("Deleted workspace {name:?}!"));
                if !deleted.forgotten.is_empty() {
                    shell.warn(&format!(
                        "{name:?} was non-empty.\nThe resources managed by the deleted workspace may still exist,\n\
                         but are no longer manageable by Strata since the state has\nbeen deleted."
                    ));
                }
            }
        },
    }
    Ok(0)
}
