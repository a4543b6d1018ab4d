// The cnndsl extension's client: starts `cnndsl lsp` for .cnn files and passes it the
// settings (cnndsl.defines, cnndsl.input, cnndsl.classes). Everything else is the server's.
"use strict";
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function settings() {
  const config = vscode.workspace.getConfiguration("cnndsl");
  return {
    defines: config.get("defines"),
    input: config.get("input"),
    classes: config.get("classes"),
  };
}

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("cnndsl")
    .get("server.command", ["cnndsl", "lsp"]);
  client = new LanguageClient(
    "cnndsl",
    "cnndsl language server",
    { command, args },
    {
      documentSelector: [
        { scheme: "file", language: "cnndsl" },
        { scheme: "untitled", language: "cnndsl" },
      ],
      initializationOptions: settings(),
      // the server reads the `cnndsl` section again whenever it changes
      synchronize: { configurationSection: "cnndsl" },
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
