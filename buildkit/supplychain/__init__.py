"""What lets a consumer trust a pushed image: who signed it, what is inside it, how it was
built — and the check of all three.

    signing.py         --sign's key, checked before anything is built
    image_contents.py  what a pushed image holds, read from its layers in the registry
    sbom.py            its CycloneDX SBOM (cyclonedx-python-lib)
    statements.py      the SLSA provenance buildkit writes; in-toto statements read back
    cosign.py          the cosign seam: sign a digest, attach an attestation, verify both
    publish.py         after a push with --sign: SBOM, provenance, sign, attest, verify
    verify.py          `python -m buildkit verify REF`: one line per check, all must hold

Signatures made here carry no transparency-log entry (`--tlog-upload=false`: these
machines reach no Rekor); verify skips the log accordingly.
"""
