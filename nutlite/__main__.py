from nutlite.cli import main

raise SystemExit(main())
