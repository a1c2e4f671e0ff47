"""Components: folders holding a `manifest.json` and a Python entry point, found in the
package's built-in folder and in the data folder, by type (modules, plugins, tools, triggers)."""
