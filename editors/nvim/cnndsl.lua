-- cnndsl in Neovim (0.10 or later, its built-in LSP client): put this file in
-- ~/.config/nvim/plugin/ (or source it from init.lua). `cnndsl` must be on PATH
-- (pip install 'cnndsl[lsp]'), or change `cmd` to the full path of the venv's cnndsl.
vim.filetype.add({ extension = { cnn = "cnndsl" } })

vim.api.nvim_create_autocmd("FileType", {
  pattern = "cnndsl",
  callback = function(args)
    vim.bo[args.buf].commentstring = "# %s"
    vim.lsp.start({
      name = "cnndsl",
      cmd = { "cnndsl", "lsp" },
      root_dir = vim.fs.root(args.buf, { ".git", "pyproject.toml" }),
      -- the project's variables and input size, as -D and --input give them
      init_options = { defines = vim.empty_dict() },
    })
    -- the output shape at the end of each line of the network
    vim.lsp.inlay_hint.enable(true, { bufnr = args.buf })
  end,
})
