from mcp_wrapper.cli import main

raise SystemExit(main())
