# Templates as Terraform evaluates them; each expected value is what
# `terraform output -json` gave for the same expression (Terraform v1.x).

# A template that is one interpolation is that value, with its type.
passthrough_number = ["${1.0}", 1]
passthrough_list   = ["${[1, 2]}", [1, 2]]
passthrough_bool   = ["${true}", true]
passthrough_object = ["${{a = 1}}", {a = 1}]
passthrough_null   = ["${null}", null]
not_alone_prefix   = ["x${1.0}", "x1"]
not_alone_space    = [" ${1.0}", " 1"]

# Escapes inside directive bodies of quoted strings.
escapes_in_if   = ["%{if true}a\nb\t\"q\"%{endif}", "a\nb\t\"q\""]
escapes_in_for  = ["%{for x in ["a","b"]}\u00e9${x}\\%{endfor}", "\u00e9a\\\u00e9b\\"]
escapes_in_else = ["%{if false}x%{else}y\n%{endif}", "y\n"]
escaped_markers = ["$${a}%%{b}", "$${a}%%{b}"]
escaped_markers_in_if = ["%{if true}$${a}%%{b}%{endif}", "$${a}%%{b}"]
escaped_backslash_then_marker = ["%{if true}\\$${x}\u00e9%{endif}", "\\$${x}\u00e9"]

# Strip markers: in a quoted string the whole neighbouring text is trimmed.
strip_endif       = ["%{if true} a %{~endif}", " a"]
strip_for_body    = ["%{ for x in [1,2] ~} ${x} %{~ endfor }", "12"]
strip_interp      = ["a ${~ "b" ~} c", "abc"]
strip_newlines    = ["%{ if true ~}\n\n  x%{ endif }", "x"]
strip_both_sides  = ["a  ${~ "b" ~}  \n c", "abc"]
strip_for_key     = ["%{ for i, v in ["a", "b"] ~}\t${i}=${v} %{~ endfor ~}  !", "0=a1=b!"]

# In a heredoc each line is its own token: `~` trims up to the newline only.
heredoc_strip_one_line = [<<EOT
%{ if true ~}

  x
%{ endif }
end
EOT
, "\n  x\n\nend\n"]

# `<<-` removes the least indentation of lines that start with text, after
# strip markers and across directive bodies.
flush_with_directives = [<<-EOT
    a
      b
    %{ if true ~}
      c
    %{ endif ~}
    d
    EOT
, "a\n  b\n      c\n    d\n"]

flush_for = [<<-EOT
  %{ for x in [1, 2] ~}
    item ${x}
  %{ endfor ~}
  end
  EOT
, "    item 1\n    item 2\n  end\n"]

flush_tabs = [<<-EOT
	tab
	  tab2
	EOT
, "tab\n  tab2\n"]

flush_blank_line_does_not_count = [<<-EOT
    x

  y
    EOT
, "  x\n\ny\n"]

flush_stripped_marker_line = [<<-EOT
    %{~ if true ~}
      one
    %{~ endif ~}
    two
    EOT
, "      one\n    two\n"]

flush_interpolation_first = [<<-EOT
  ${"x"} a
    b
  EOT
, "x a\n  b\n"]

flush_text_then_interpolation_line = [<<-EOT
      a
    ${"x"}
    EOT
, "  a\nx\n"]

flush_whitespace_only_line = [<<-EOT
    a
   
    b
    EOT
, "a\n   \nb\n"]

flush_number = [<<-EOT
  ${1.5}
  EOT
, "1.5\n"]

# An empty heredoc is an empty string and ends where it ends.
empty_heredoc = [{a = <<EOT
EOT
b = "after"}, {a = "", b = "after"}]

empty_flush_heredoc = [[<<-EOT
  EOT
, "next"], ["", "next"]]

# Template files: one token per line, and a file that is one interpolation
# is that value.
file_strip_one_line = [templatefile("tests/functions/files/templates/strip.tpl", {}), "\n  x\n\nend\n"]
file_strip_both     = [templatefile("tests/functions/files/templates/strip2.tpl", {}), "  a\n  b\n"]
file_passthrough    = [templatefile("tests/functions/files/templates/pass.tpl", {v = [1, 2]}), [1, 2]]
file_passthrough_number = [templatefile("tests/functions/files/templates/pass.tpl", {v = 1.50}), 1.5]
file_newline_is_text    = [templatefile("tests/functions/files/templates/pass_nl.tpl", {v = 1}), "1\n"]
