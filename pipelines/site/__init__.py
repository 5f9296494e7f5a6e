"""The registry's static site: plain HTML + SVG from the release manifests (`modelzoo site build|publish`)."""
