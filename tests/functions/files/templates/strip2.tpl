  a
    %{~ if true ~}
  b
%{ endif }