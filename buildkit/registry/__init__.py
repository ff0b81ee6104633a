"""The OCI registry seam: the distribution API client (client), image references
(reference), credentials, manifests and indexes (manifests), and pushing an engine's image
by digest from either image store (blobs: the classic store; oci_export: the containerd
store)."""
