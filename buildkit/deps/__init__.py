"""What images and checks are made from: the services' environments (envs), dependency
wheels per platform and the image build context (wheelhouse), and Claude Code from npm
(claude_code)."""
