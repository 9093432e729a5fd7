from sage_ft_tui.cli.app import main

if __name__ == "__main__":
    main()
