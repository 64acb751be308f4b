// The local Payments page (docs/web-page.md): plain JavaScript against the API on the same origin.
// Money is shown exactly as the API writes it (strings with the currency's digits and sign), never parsed.
// Card fields are read once when Pay is pressed, sent to POST /payments and cleared; never stored.
"use strict";

const PAGE_SIZE = 20;
const POLL_MS = 700;
const POLL_TRIES = 20;
const FALLBACK_CONFIG = { simulator: "http://127.0.0.1:12111", customers: ["demo", "other"] };
const METHOD_LABELS = {
  bank_transfer: "Bank transfer", paypal: "PayPal", credit_card: "Card", razorpay: "Razorpay",
  paystack: "Paystack", nowpayments: "Crypto (NOWPayments)", voucher: "Voucher", purchase: "Purchase", refund: "Refund",
};
const STATUS_LABELS = { pending: "Pending", completed: "Completed", cancelled: "Cancelled" };
const PAYER_GROUPS = ["admin", "finance"];
// sessionStorage, so a round trip through a gateway's page keeps the session (never card data):
const TOKEN_KEY = "payments.token";
const REFS_KEY = "payments.gatewayRefs"; // payment id -> {provider, ref}: what the simulator settles
const AWAITING_KEY = "payments.awaiting"; // the payment a gateway page will send the payer back about

const state = {
  token: null,
  claims: {},
  config: FALLBACK_CONFIG,
  localTools: false, // the stack serves /web/config.json, /web/token and /web/sim/settle
  cursor: null,
  listTicket: 0,
  attempt: null, // {fingerprint, key} of a Pay whose outcome is unknown, to retry with the same key
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

function say(node, text) {
  node.textContent = text || "";
  show(node, Boolean(text));
}

// ---- the API ----------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The API answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

async function call(method, path, { body, headers = {}, token = state.token } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { message: "The API could not be reached. Is `make dev` still running?" });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    if (response.status === 401 && token && token === state.token) {
      signOut(`Signed out: ${(data && data.message) || "the token was refused"}.`);
    }
    throw new ApiError(response.status, data);
  }
  return { status: response.status, data };
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

function groupsOf(claims) {
  const groups = claims["cognito:groups"] || [];
  return Array.isArray(groups) ? groups : String(groups).replace(/[[\]]/g, "").split(/[\s,]+/).filter(Boolean);
}

// ---- signing in ---------------------------------------------------------------------------------------

async function loadConfig() {
  try {
    const response = await fetch("/web/config.json");
    if (response.ok) {
      state.config = { ...FALLBACK_CONFIG, ...(await response.json()) };
      state.localTools = true;
    }
  } catch {
    // No local helpers: the page still works with a pasted token.
  }
  $("customer-list").replaceChildren(...(state.config.customers || []).map((name) => el("option", { value: name })));
}

function signIn(token) {
  state.token = token;
  state.claims = claimsOf(token);
  sessionStorage.setItem(TOKEN_KEY, token);
  const groups = groupsOf(state.claims);
  $("who-text").textContent = `${state.claims["custom:customer_id"] || "(no customer)"} · ${groups.join(", ") || "no group"}`;
  const canPay = groups.some((group) => PAYER_GROUPS.includes(group));
  $("pay-button").disabled = !canPay;
  $("download").disabled = !canPay;
  say($("pay-error"), canPay ? "" : "Your group can only read payments; paying and exports need admin or finance.");
  show($("who"), true);
  show($("sign-in"), false);
  show($("app"), true);
}

function signOut(message) {
  state.token = null;
  state.claims = {};
  state.attempt = null;
  sessionStorage.removeItem(TOKEN_KEY);
  show($("who"), false);
  show($("app"), false);
  show($("sign-in"), true);
  say($("sign-in-error"), message);
  $("payment-rows").replaceChildren();
  $("balances").replaceChildren();
  hideResult();
}

async function pickerSignIn(event) {
  event.preventDefault();
  say($("sign-in-error"), "");
  const customer = $("picker-customer").value.trim();
  try {
    const { data } = await call("POST", "/web/token", { body: { customer, groups: [$("picker-group").value] }, token: null });
    signIn(data.token);
    await refreshAll();
  } catch (error) {
    const missing = error.status === 404 || error.status === 405;
    say($("sign-in-error"), missing ? "This stack does not hand out demo tokens; paste one from `make token`." : error.message);
    if (missing) $("paste-details").open = true;
  }
}

async function pasteSignIn(event) {
  event.preventDefault();
  const token = $("paste-token").value.trim().replace(/^Bearer\s+/i, "");
  try {
    await call("GET", "/balance", { token }); // the authorizer's verdict, before the page switches
    $("paste-token").value = "";
    signIn(token);
    await refreshAll();
  } catch (error) {
    say($("sign-in-error"), error.message);
  }
}

// ---- balance and payments --------------------------------------------------------------------------------

function isNegative(amount) {
  return String(amount).trim().startsWith("-");
}

function money(amount, currency) {
  return [
    el("span", { className: "amount" }, amount),
    " ",
    el("span", { className: "currency" }, currency),
  ];
}

async function loadBalance() {
  const { data } = await call("GET", "/balance");
  const items = data.balances.map((balance) =>
    el("li", { className: isNegative(balance.amount) ? "negative" : "", "data-currency": balance.currency },
      money(balance.amount, balance.currency)),
  );
  $("balances").replaceChildren(...(items.length ? items : [el("li", { className: "muted" }, "No completed payments yet")]));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function when(iso) {
  return el("time", { datetime: iso, title: iso }, dateTime.format(new Date(iso)));
}

function detailsOf(payment) {
  const parts = [METHOD_LABELS[payment.method] || payment.method];
  if (payment.card) parts.push(`${payment.card.brand || "card"} •••• ${payment.card.last4}`);
  if (payment.reference) parts.push(payment.reference);
  if (payment.failure_reason) parts.push(payment.failure_reason);
  return parts.join(" · ");
}

function paymentRow(payment) {
  const status = el("span", { className: `badge ${payment.status}` }, STATUS_LABELS[payment.status] || payment.status);
  return el("tr", { "data-id": payment.id, "data-status": payment.status },
    el("td", {}, when(payment.created_at)),
    el("td", { className: `num total${isNegative(payment.amount) ? " negative" : ""}` }, money(payment.amount, payment.currency)),
    el("td", {}, status, payment.status === "pending" ? settleButtons(payment, "compact") : null),
    el("td", {}, el("div", {}, payment.description), el("div", { className: "muted small" }, detailsOf(payment))),
  );
}

function filterQuery() {
  const status = $("filter-status").value;
  const from = $("filter-from").value;
  const to = $("filter-to").value;
  // Whole days in the browser's time zone, sent as UTC instants as the API wants.
  return {
    status,
    from: from && new Date(`${from}T00:00:00`).toISOString(),
    to: to && new Date(`${to}T23:59:59.999`).toISOString(),
  };
}

async function loadPayments({ more = false } = {}) {
  say($("list-error"), "");
  const cursor = more ? state.cursor : null;
  const ticket = ++state.listTicket; // filters change quickly: only the latest request may fill the table
  try {
    const { data } = await call("GET", `/payments${query({ limit: PAGE_SIZE, ...filterQuery(), cursor })}`);
    if (ticket !== state.listTicket) return;
    const rows = data.items.map(paymentRow);
    if (more) $("payment-rows").append(...rows);
    else $("payment-rows").replaceChildren(...rows);
    state.cursor = data.next_cursor;
    show($("load-more"), Boolean(state.cursor));
    show($("empty"), $("payment-rows").children.length === 0);
  } catch (error) {
    if (ticket === state.listTicket) say($("list-error"), error.message);
  }
}

async function refreshAll() {
  await Promise.all([loadPayments(), loadBalance().catch((error) => say($("list-error"), error.message))]);
}

// ---- settling with the gateway simulator (local only) ---------------------------------------------------

function gatewayRefs() {
  try {
    return JSON.parse(sessionStorage.getItem(REFS_KEY)) || {};
  } catch {
    return {};
  }
}

function rememberGatewayRef(paymentId, provider, ref) {
  if (!ref) return;
  const refs = gatewayRefs();
  refs[paymentId] = { provider, ref };
  const recent = Object.entries(refs).slice(-50);
  sessionStorage.setItem(REFS_KEY, JSON.stringify(Object.fromEntries(recent)));
}

function settleButtons(payment, style) {
  if (!state.localTools) return null;
  const viaGateway = Boolean(gatewayRefs()[payment.id]);
  const how = viaGateway ? "the gateway simulator sends its webhook" : "an operator settles it (admin route)";
  const [paid, failed] = style === "compact" ? ["Complete", "Cancel"]
    : payment.method === "bank_transfer" ? ["Transfer received", "Cancel"] : ["Paid", "Failed"];
  return el("div", { className: `settle ${style}` },
    "Simulate:",
    el("button", { type: "button", className: "small ok", title: `Local only: ${how}`, onclick: () => settle(payment, "complete") }, paid),
    el("button", { type: "button", className: "small", title: `Local only: ${how}`, onclick: () => settle(payment, "cancel") }, failed),
  );
}

async function settle(payment, outcome) {
  const known = gatewayRefs()[payment.id];
  notice(`Settling ${payment.amount} ${payment.currency}…`);
  try {
    if (known) {
      const gatewayOutcome = outcome === "complete" ? "success" : "failure";
      await call("POST", "/web/sim/settle", { body: { ...known, outcome: gatewayOutcome }, token: null });
    } else {
      const operator = await call("POST", "/web/token", { body: { customer: null, groups: ["operator"] }, token: null });
      const path = `/admin/customers/${encodeURIComponent(state.claims["custom:customer_id"])}/payments/${encodeURIComponent(payment.id)}/${outcome}`;
      await call("POST", path, { body: { note: "settled from the local web page" }, token: operator.data.token });
    }
  } catch (error) {
    notice("");
    say($("list-error"), error.message);
    return;
  }
  await watch(payment.id);
}

// Webhooks are processed before the simulator answers, except PayPal's capture, which follows it: poll a little.
async function watch(paymentId, waitingText = "Waiting for the payment to settle…") {
  notice(waitingText);
  let payment = null;
  for (let tries = 0; tries < POLL_TRIES; tries += 1) {
    try {
      payment = (await call("GET", `/payments/${encodeURIComponent(paymentId)}`)).data;
    } catch (error) {
      notice("");
      say($("list-error"), error.message);
      return;
    }
    if (payment.status !== "pending") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await refreshAll();
  if (payment.status !== "pending") for (const stale of document.querySelectorAll("#pay-result .settle")) stale.remove();
  const label = STATUS_LABELS[payment.status];
  notice(payment.status === "pending" ? "The payment is still pending; refresh later." : `Payment ${payment.amount} ${payment.currency}: ${label}.`);
}

function notice(text) {
  say($("notice"), text);
}

// ---- Make Payment ------------------------------------------------------------------------------------------

function showFieldsFor(method) {
  for (const node of document.querySelectorAll("[data-for]")) {
    const rule = node.dataset.for;
    show(node, rule.startsWith("!") ? method !== rule.slice(1) : method === rule);
  }
  clearFieldErrors();
}

function clearFieldErrors() {
  for (const node of document.querySelectorAll("#pay-form [aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  }
  for (const node of document.querySelectorAll("#pay-form .field-error")) node.remove();
  say($("pay-error"), "");
}

function showPayError(error) {
  const field = error.body.field;
  const input = field && (document.querySelector(`#pay-form [data-field="${CSS.escape(field)}"]`) ||
    (field.startsWith("card") && document.querySelector("#pay-form [data-field='card.number']")));
  if (input && !input.closest("[hidden]")) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "field-error");
    input.closest("label").after(el("p", { id: "field-error", className: "field-error", role: "alert" }, error.message));
    input.focus();
  } else {
    say($("pay-error"), error.message);
  }
}

function clearCardFields() {
  for (const id of ["card-number", "card-exp-month", "card-exp-year", "card-cvc"]) $(id).value = "";
}

function paymentBody() {
  const method = $("pay-method").value;
  const body = { method, currency: $("pay-currency").value.trim().toUpperCase() };
  if (method === "voucher") {
    body.voucher_code = $("voucher-code").value.trim();
    return body;
  }
  body.amount = $("pay-amount").value.trim(); // as typed: the API validates and answers 422 naming the field
  const description = $("pay-description").value.trim();
  if (description) body.description = description;
  if (method === "credit_card") {
    body.card = {
      number: $("card-number").value.replace(/[\s-]/g, ""),
      exp_month: $("card-exp-month").value.trim(),
      exp_year: $("card-exp-year").value.trim(),
      cvc: $("card-cvc").value.trim(),
    };
  }
  return body;
}

async function digest(text) {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function pay(event) {
  event.preventDefault();
  clearFieldErrors();
  hideResult();
  let body = paymentBody();
  clearCardFields();
  // A retry of the same submission whose outcome is unknown reuses its key, so it is never charged twice;
  // only a digest is kept, never the card fields.
  const fingerprint = await digest(JSON.stringify(body));
  const key = state.attempt && state.attempt.fingerprint === fingerprint ? state.attempt.key : crypto.randomUUID();
  state.attempt = { fingerprint, key };
  const button = $("pay-button");
  button.disabled = true;
  button.textContent = "Paying…";
  try {
    const { data } = await call("POST", "/payments", { body, headers: { "Idempotency-Key": key } });
    state.attempt = null;
    for (const id of ["voucher-code", "pay-amount", "pay-description"]) $(id).value = "";
    await followNextAction(data.payment, data.next_action);
  } catch (error) {
    // A definite answer ends the attempt; a lost answer, 409 (still running) or 5xx may be retried as is.
    if (error.status >= 400 && error.status < 500 && error.status !== 409) state.attempt = null;
    if (error.status === 402 && error.body.payment) {
      showResult("error", "Card declined", [el("p", {}, error.message)]);
      await refreshAll();
    } else {
      showPayError(error);
    }
  } finally {
    body = null;
    button.disabled = false;
    button.textContent = "Pay";
  }
}

function hideResult() {
  $("pay-result").replaceChildren();
  show($("pay-result"), false);
}

function showResult(kind, title, content) {
  $("pay-result").className = `result ${kind}`;
  $("pay-result").replaceChildren(el("h3", {}, title), ...content);
  show($("pay-result"), true);
}

function definitionList(pairs) {
  return el("dl", { className: "details" }, pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function leaveFor(url, payment) {
  sessionStorage.setItem(AWAITING_KEY, JSON.stringify({ id: payment.id, method: payment.method }));
  window.location.assign(url);
}

async function followNextAction(payment, action) {
  const paid = `${payment.amount} ${payment.currency}`;
  const type = action && action.type;
  if (type === "redirect") {
    const url = new URL(action.url);
    const ref = url.searchParams.get("token") || url.searchParams.get("iid");
    rememberGatewayRef(payment.id, payment.method, ref);
    showResult("info", `Continue at ${METHOD_LABELS[payment.method]}`, [el("p", {}, `Taking you to ${url.host}…`)]);
    leaveFor(action.url, payment);
    return;
  }
  await refreshAll();
  if (type === "bank_transfer_instructions") {
    showResult("info", "Pay by bank transfer", [
      el("p", {}, `Transfer ${action.amount} ${action.currency} with this reference. The payment stays Pending until it arrives.`),
      definitionList([
        ["Reference", action.reference], ["Amount", `${action.amount} ${action.currency}`],
        ["Account", action.account_name], ["IBAN", action.iban], ["BIC", action.bic], ["Bank", action.bank_name],
      ]),
      settleButtons(payment, "full"),
    ]);
  } else if (type === "stripe_sdk") {
    const intent = action.client_secret.split("_secret_")[0];
    rememberGatewayRef(payment.id, "stripe", intent);
    showResult("info", "3-D Secure required", [
      el("p", {}, `Your bank asks you to confirm this card payment of ${paid}. It stays Pending until you do.`),
      el("button", { type: "button", className: "primary", onclick: () => leaveFor(`${state.config.simulator}/stripe/3ds/${intent}`, payment) },
        "Confirm with your bank"),
    ]);
  } else if (type === "razorpay_checkout") {
    rememberGatewayRef(payment.id, "razorpay", action.order_id);
    showResult("info", "Razorpay checkout", [
      el("p", {}, `Order ${action.order_id} for ${action.amount} ${action.currency}. In the portal Razorpay's checkout window opens here; locally the simulator stands in for it.`),
      settleButtons(payment, "full"),
    ]);
  } else if (payment.status === "completed") {
    showResult("ok", "Payment completed", [el("p", {}, `${paid} by ${METHOD_LABELS[payment.method]}.`)]);
  } else {
    showResult("info", `Payment ${STATUS_LABELS[payment.status]}`, [el("p", {}, `${paid} by ${METHOD_LABELS[payment.method]}.`)]);
  }
}

// ---- CSV export ----------------------------------------------------------------------------------------------

async function download() {
  const button = $("download");
  button.disabled = true;
  say($("list-error"), "");
  try {
    const { status, from, to } = filterQuery();
    let { data } = await call("POST", "/payments/exports", { body: { status: status || undefined, from: from || undefined, to: to || undefined } });
    // A large account is exported in the background (202): poll the export until its link is ready.
    for (let tries = 0; data.status === "running" && tries < 300; tries += 1) {
      notice("Preparing the export…");
      await new Promise((resolve) => setTimeout(resolve, 1000));
      data = (await call("GET", `/payments/exports/${encodeURIComponent(data.export_id)}`)).data;
    }
    if (!data.url) throw new ApiError(0, { message: data.message || "The export did not finish; try again." });
    notice(`Exported ${data.row_count} payments.`);
    window.location.assign(data.url); // presigned, Content-Disposition: attachment: the page stays
  } catch (error) {
    notice("");
    say($("list-error"), error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- start ---------------------------------------------------------------------------------------------------

async function backFromGateway() {
  const awaiting = sessionStorage.getItem(AWAITING_KEY);
  if (!awaiting) return;
  sessionStorage.removeItem(AWAITING_KEY);
  history.replaceState(null, "", window.location.pathname); // drop the gateway's ?token=… from the address
  const { id, method } = JSON.parse(awaiting);
  await watch(id, `Back from ${METHOD_LABELS[method] || "the gateway"}: waiting for its confirmation…`);
}

async function start() {
  $("picker-form").addEventListener("submit", pickerSignIn);
  $("paste-form").addEventListener("submit", pasteSignIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("pay-form").addEventListener("submit", pay);
  $("pay-method").addEventListener("change", (event) => {
    showFieldsFor(event.target.value);
    hideResult();
  });
  $("filters").addEventListener("change", () => loadPayments());
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filter-clear").addEventListener("click", () => {
    $("filters").reset();
    loadPayments();
  });
  $("load-more").addEventListener("click", () => loadPayments({ more: true }));
  $("refresh").addEventListener("click", () => refreshAll());
  $("download").addEventListener("click", download);
  showFieldsFor($("pay-method").value);
  await loadConfig();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (!saved) {
    signOut("");
    return;
  }
  signIn(saved);
  await refreshAll();
  await backFromGateway();
}

start();
