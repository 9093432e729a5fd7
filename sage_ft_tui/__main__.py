from sage_ft_tui.cli import main

main()
