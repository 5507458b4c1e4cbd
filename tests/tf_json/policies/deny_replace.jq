# conftest's "deny replacements", rewritten in jq: a replacement is a change
# whose actions are ["delete","create"], or ["create","delete"] under
# create_before_destroy.
#   deny[msg] { rc := input.resource_changes[_]; rc.change.actions == ["delete", "create"] ... }
[.resource_changes[]
 | select(.change.actions == ["delete", "create"] or .change.actions == ["create", "delete"])
 | "\(.address) would be replaced (\(.change.actions | join(" then ")))"] | sort
