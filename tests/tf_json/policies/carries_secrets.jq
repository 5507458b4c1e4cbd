# Which planned resources carry a sensitive value anywhere (a policy that
# must not inspect secrets skips these resources).
[.resource_changes[] | select([.change.after_sensitive | .. | select(. == true)] | length > 0) | .address] | sort
