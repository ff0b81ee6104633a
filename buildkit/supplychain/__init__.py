"""What lets a consumer trust a pushed image: who signed it, what is inside it, how it was
built — and the check of all three.

    cosign.py      the cosign seam: sign a digest, attach an attestation, verify both
    statements.py  SBOM and SLSA provenance predicates buildkit writes, and the in-toto
                   statements cosign hands back, as frozen dataclasses
    verify.py      `python -m buildkit verify REF`: one line per check, all must hold

Signatures made here carry no transparency-log entry (`--tlog-upload=false`: these
machines reach no Rekor); verify skips the log accordingly. The release workflow signs
keyless, with GitHub's OIDC identity, where the log is written.
"""
