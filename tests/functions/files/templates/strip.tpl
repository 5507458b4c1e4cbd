%{ if true ~}

  x
%{ endif }
end
