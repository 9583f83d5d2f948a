# Copyright (c) aiplatform.ollama contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Model bundles: Ollama models carried as ONE tar file into a site without registry access.

One job a file: `format` (what a bundle is, and reading one without trusting it), `export` (writing one from
a store or from registries), `importer` (into a store, under its lock), `push` (into a registry), and
`progress` (what the action plugin prints while any of them runs). The module ollama_bundle calls them.
"""
