# conftest's "deny deletes", rewritten in jq:
#   deny[msg] { rc := input.resource_changes[_]; rc.change.actions[_] == "delete"
#               msg := sprintf("%s would be destroyed", [rc.address]) }
[.resource_changes[] | select(.change.actions | index("delete")) | "\(.address) would be destroyed"] | sort
