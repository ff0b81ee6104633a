"""The Docker engine seam: the docker SDK client (client), builds through the engine
(build), smoke tests of built images (smoke), and the buildx command (buildx)."""
