// Custom key stores: their type, connection state and failure, connect and disconnect.

import {
  ConnectCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DisconnectCustomKeyStoreCommand,
  type CustomKeyStoresListEntry,
} from "@aws-sdk/client-kms";
import { h, replace } from "../dom";
import { kms } from "../session";
import { allPages } from "../kms";
import { Status, actionButton, confirm, errorView, stateBadge, table, when } from "../ui";

function allStores(): Promise<CustomKeyStoresListEntry[]> {
  return allPages(
    (Marker) => kms().send(new DescribeCustomKeyStoresCommand({ Marker, Limit: 100 })),
    (r) => r.CustomKeyStores,
  );
}

export async function keyStoresPage(main: HTMLElement): Promise<void> {
  const status = new Status();
  const list = h("div", { class: "results", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading custom key stores…"));
  replace(main, h("h1", null, "Custom key stores"), status.el, list);
  let stores: CustomKeyStoresListEntry[];
  try {
    stores = await allStores();
  } catch (e) {
    replace(list, errorView(e));
    list.removeAttribute("aria-busy");
    return;
  }
  const reload = () => keyStoresPage(main);
  const rows = stores.map((s) => {
    const id = s.CustomKeyStoreId ?? "";
    const state = s.ConnectionState ?? "";
    const connect = () =>
      actionButton("Connect", status, async () => {
        await kms().send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
        await reload();
      }, { "aria-label": `Connect ${s.CustomKeyStoreName}` });
    const disconnect = (why: string) =>
      actionButton("Disconnect", status, async () => {
        if (!(await confirm("Disconnect this key store?", why, "Disconnect"))) return;
        await kms().send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
        await reload();
      }, { "aria-label": `Disconnect ${s.CustomKeyStoreName}` });
    // A FAILED store must be disconnected before it is connected again (AWS's rule, and the
    // server's): Disconnect is the way out of it.
    const button =
      state === "DISCONNECTED"
        ? connect()
        : state === "FAILED"
          ? h(
              "div",
              { class: "buttons" },
              disconnect("The store failed to connect. Disconnect it, fix the cause shown under Error, then connect it again."),
              h("span", { class: "hint" }, "then connect again"),
            )
          : state === "CONNECTED" || state === "CONNECTING"
            ? disconnect("Its keys cannot be used until it is connected again.")
            : "";
    return [
      h("span", { class: "mono" }, id),
      s.CustomKeyStoreName ?? "",
      s.CustomKeyStoreType ?? "",
      stateBadge(state),
      s.ConnectionErrorCode ?? "—",
      s.CustomKeyStoreType === "EXTERNAL_KEY_STORE"
        ? `${s.XksProxyConfiguration?.Connectivity ?? ""} ${s.XksProxyConfiguration?.UriEndpoint ?? ""}${s.XksProxyConfiguration?.UriPath ?? ""}`
        : s.CloudHsmClusterId ?? "—",
      when(s.CreationDate),
      button,
    ];
  });
  replace(list, table(["ID", "Name", "Type", "Connection", "Error", "Cluster or proxy", "Created", ""], rows));
  list.removeAttribute("aria-busy");
}
