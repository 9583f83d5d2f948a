# Sphinx configuration of the generated reference (`make docs`, tools/docs.sh): the pages antsibull-docs
# writes from the plugins' documentation and the roles' argument specs, as HTML in build/docs/html.
# No intersphinx: the build runs offline, and the simplified-rst pages link the Ansible docs by URL.
project = "aiplatform.ollama"
copyright = "aiplatform.ollama contributors"
html_title = "aiplatform.ollama reference"
extensions = ["sphinx_antsibull_ext"]
pygments_style = "ansible"
highlight_language = "YAML+Jinja"
html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
html_copy_source = False
html_use_index = False
nitpicky = True
# the collection's index links every page itself; antsibull-docs writes no toctree for them
suppress_warnings = ["toc.not_included"]
