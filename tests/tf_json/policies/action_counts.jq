# How many changes of each kind of action list, as a policy counting them
# (e.g. "at most N destroys") sees the plan.
[.resource_changes[].change.actions | join(",")] | group_by(.) | map({key: .[0], value: length}) | from_entries
