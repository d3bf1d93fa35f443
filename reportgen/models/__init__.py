"""Models stage: the registry (names, file paths, @register_model) and the built-in models of the course
reports (cnn, lenet, mlp). The registry imports the built-ins when a name is first looked up, so
importing this package (and a spec) does not load torch."""

BUILTIN_MODULES = ("cnn", "lenet", "mlp")
