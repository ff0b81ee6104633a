from toolman.cli import main

raise SystemExit(main())
