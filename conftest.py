# The kubeproof plugin: options, fixtures and evidence for the suite in tests_cluster/.
pytest_plugins = ["kubeproof.plugin"]
