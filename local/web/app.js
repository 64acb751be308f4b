// The local Payments page (docs/web-page.md): plain JavaScript against the API on the same origin.
// Money is shown exactly as the API writes it (strings with the currency's digits and sign), never parsed.
// Card fields are read once when Pay is pressed, sent to POST /payments and cleared; never stored.
"use strict";

const PAGE_SIZE = 20;
const POLL_MS = 700;
const POLL_TRIES = 20;
const SEARCH_DELAY_MS = 300; // typing in the search box asks the API once the typing pauses
const FALLBACK_CONFIG = { simulator: "http://127.0.0.1:12111", customers: ["demo", "other"] };
// The methods, their labels and the gateway behind each come from the registry of the service
// (/web/config.json's `methods`), so the page names no gateway itself.
const methodOf = (method) => (state.config.methods || []).find((entry) => entry.method === method) || {};
const methodLabel = (method) => methodOf(method).label || method;
// The words by which a description already names its method: the API's own descriptions do
// ("PayPal order 5O19…", "Visa card ending 4242"), and the sub-line should not say it again.
const methodWords = (method) => {
  const entry = methodOf(method);
  const words = [entry.label, entry.gateway_label, entry.provider, method.replace("_", " ")];
  if (method === "credit_card") words.push("card");
  return [...new Set(words.filter(Boolean).flatMap((word) => word.toLowerCase().split(/[()]/)).map((w) => w.trim()).filter(Boolean))];
};
const gatewayOfMethod = (method) => methodOf(method).provider || null; // the simulator settles by (provider, gateway_reference)
const gatewayName = (provider) =>
  ((state.config.methods || []).find((entry) => entry.provider === provider) || {}).gateway_label || provider;
const STATUS_LABELS = { pending: "Pending", completed: "Completed", cancelled: "Cancelled" };
const CARD_BRANDS = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", discover: "Discover", jcb: "JCB", diners: "Diners Club", unionpay: "UnionPay" };
const PAYER_GROUPS = ["admin", "finance"];
const READER_GROUPS = ["admin", "finance", "support"];
// sessionStorage, so a round trip through a gateway's page keeps the session (never card data):
const TOKEN_KEY = "payments.token";
const AWAITING_KEY = "payments.awaiting"; // the payment a gateway page will send the payer back about
// Per customer, and kept across sign-out: the lockout is the API's and lasts whoever signs in.
const VOUCHER_LOCK_KEY = "payments.voucherLockedUntil"; // customer id -> ISO instant

const state = {
  token: null,
  claims: {},
  customer: null,
  canPay: false,
  options: null, // GET /payment-options: the methods, limits and surcharges the account allows
  config: FALLBACK_CONFIG,
  localTools: false, // the stack serves /web/config.json, /web/token and /web/sim/settle
  session: 0, // bumped at every sign-in and sign-out: answers for an earlier session are dropped
  cursor: null,
  listTicket: 0,
  detailTicket: 0,
  attempt: null, // {fingerprint, key} of a Pay whose outcome is unknown, to retry with the same key
  paying: false,
  voucherLockedUntil: null, // Date, while the API refuses vouchers for this customer
  voucherTimer: null,
  searchTimer: null,
  detailId: null,
  detailOpener: null, // what had the focus before the detail opened, to give it back
  lastReceipt: null, // {id, url} of the receipt last opened (the browser tests read it)
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

// replaceChildren with the parts that are there: it would write a null as the text "null".
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
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
  constructor(status, body, headers) {
    super((body && body.message) || `The API answered ${status}.`);
    this.status = status;
    this.body = body || {};
    this.headers = headers || new Headers();
  }
}

async function call(method, path, { body, headers = {}, token = state.token } = {}) {
  // An answer that arrives after its user signed out must not fill the next user's page: it never resolves.
  const session = state.session;
  const ours = Boolean(token) && token === state.token;
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const stale = () => ours && session !== state.session;
  let response;
  let text;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } catch {
    if (stale()) return new Promise(() => {});
    throw new ApiError(0, { message: "The API could not be reached. Is `make dev` still running?" });
  }
  if (stale()) return new Promise(() => {});
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    if (response.status === 401 && ours) {
      // The sign-in form says why; the caller, now of an earlier session, gets no answer to show.
      signOut(`Signed out: ${(data && data.message) || "the token was refused"}.`);
      return new Promise(() => {});
    }
    throw new ApiError(response.status, data, response.headers);
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

// ---- signing in and out ---------------------------------------------------------------------------------

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
  const payable = (state.config.methods || []).filter((entry) => entry.payable);
  if (payable.length) {
    $("pay-method").replaceChildren(...payable.map((entry) => el("option", { value: entry.method }, entry.label)));
  }
}

// Each group sees only what it may do: admin and finance pay, settle (locally) and export; support reads;
// an operator's routes are all under /admin/, none of which this page shows.
function signIn(token) {
  resetView();
  state.token = token;
  state.claims = claimsOf(token);
  state.customer = state.claims["custom:customer_id"] || null;
  sessionStorage.setItem(TOKEN_KEY, token);
  const groups = groupsOf(state.claims);
  state.canPay = groups.some((group) => PAYER_GROUPS.includes(group));
  const canRead = groups.some((group) => READER_GROUPS.includes(group));
  $("who-text").textContent = `${state.customer || "(no customer)"} · ${groups.join(", ") || "no group"}`;
  show($("pay-card"), state.canPay);
  show($("download-tools"), state.canPay);
  say($("read-only"), canRead && !state.canPay
    ? "Read only: your group (support) can look payments up; paying, settling and exports need admin or finance."
    : "");
  show($("who"), true);
  show($("sign-in"), false);
  show($("app"), canRead);
  if (!canRead) {
    const operator = groups.includes("operator");
    $("no-access-title").textContent = operator ? "Operator" : "Nothing to show";
    $("no-access-text").textContent = operator
      ? "You are signed in as an operator. Operators complete or cancel customers' pending payments, record " +
        "purchases and issue vouchers through the /admin/… routes (see the README); this page is the customers' " +
        "Payments page, so it has no forms for you. Sign out to sign in as a customer."
      : "Your token has none of the groups this page serves (admin, finance, support). Sign out and sign in again.";
  }
  show($("no-access"), !canRead);
  showVoucherLock(storedVoucherLock(state.customer));
  return canRead;
}

// Everything the previous user saw or typed goes: notices, filters, search, form fields, detail, results.
function resetView() {
  state.session += 1;
  state.cursor = null;
  state.options = null;
  state.attempt = null;
  state.paying = false;
  state.detailId = null;
  clearTimeout(state.searchTimer);
  closeDetail();
  $("detail-body").replaceChildren();
  $("filters").reset();
  $("download-excel").checked = false;
  $("pay-form").reset();
  clearCardFields();
  showFieldsFor($("pay-method").value);
  $("pay-button").textContent = "Pay";
  hideResult();
  notice("");
  say($("list-error"), "");
  say($("read-only"), "");
  showVoucherLock(null);
  $("payment-rows").replaceChildren();
  $("balances").replaceChildren();
  $("summary-count").textContent = "";
  $("summary-totals").replaceChildren();
  show($("summary"), false);
  show($("load-more"), false);
  show($("empty"), false);
}

function signOut(message) {
  resetView();
  state.token = null;
  state.claims = {};
  state.customer = null;
  state.canPay = false;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(AWAITING_KEY);
  show($("who"), false);
  show($("app"), false);
  show($("no-access"), false);
  show($("sign-in"), true);
  say($("sign-in-error"), message);
}

async function pickerSignIn(event) {
  event.preventDefault();
  say($("sign-in-error"), "");
  const customer = $("picker-customer").value.trim();
  const group = $("picker-group").value;
  try {
    // Operators act for every customer: their tokens carry none.
    const body = { customer: group === "operator" ? null : customer, groups: [group] };
    const { data } = await call("POST", "/web/token", { body, token: null });
    if (signIn(data.token)) await refreshAll();
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
    // The authorizer's verdict before the page switches: 403 is a valid token whose group may not read
    // the balance (an operator's), which signIn then explains.
    await call("GET", "/balance", { token }).catch((error) => {
      if (error.status !== 403) throw error;
    });
    $("paste-token").value = "";
    if (signIn(token)) await refreshAll();
  } catch (error) {
    say($("sign-in-error"), error.message);
  }
}

// ---- balance, summary and payments --------------------------------------------------------------------

function isNegative(amount) {
  return String(amount).trim().startsWith("-");
}

const moneyText = (amount, currency) => `${amount} ${currency}`; // in a sentence

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
      money(balance.amount, balance.currency),
      // With a credit limit: what calls may still use, below zero included (docs/account-settings.md).
      ...(balance.available
        ? [el("span", { className: "muted credit" }, ` · available ${moneyText(balance.available, balance.currency)} (credit limit ${moneyText(balance.credit_limit, balance.currency)})`)]
        : [])),
  );
  $("balances").replaceChildren(...(items.length ? items : [el("li", { className: "muted" }, "No completed payments yet")]));
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// In the viewer's time zone; the exact UTC instant is in the title and the datetime attribute.
function when(iso, format = dateTime) {
  return el("time", { datetime: iso, title: iso }, format.format(new Date(iso)));
}

function notYet(text = "Not completed") {
  return el("span", { className: "muted", title: text }, "—");
}

function cardLabel(card) {
  const brand = CARD_BRANDS[String(card.brand).toLowerCase()] || card.brand || "Card";
  return `${brand} •••• ${card.last4}`;
}

// What the row adds under the description: the method, the card, the references, each only when the
// description does not already say it, and never twice.
function subLine(payment) {
  const text = String(payment.description || "").toLowerCase();
  const says = (words) => words.some((word) => word && text.includes(String(word).toLowerCase()));
  const parts = [];
  const add = (part, words) => {
    if (part && !says(words) && !parts.includes(part)) parts.push(part);
  };
  add(methodLabel(payment.method), methodWords(payment.method));
  if (payment.card) add(cardLabel(payment.card), [payment.card.last4]);
  add(payment.reference, [payment.reference]);
  add(payment.gateway_reference, [payment.gateway_reference]);
  return parts.join(" · ");
}

function badge(status) {
  return el("span", { className: `badge ${status}` }, STATUS_LABELS[status] || status);
}

const DISPUTE_LABELS = { open: "Open", won: "Won: any funds taken are given back", lost: "Lost: the funds stay taken back" };
const ORIGINAL_LABELS = { refund: "Refund of", chargeback: "Chargeback of", chargeback_reversal: "Reverses a chargeback of" };
// What an operator can refund through its gateway (docs/refunds.md): a paid payment, not an entry of another.
const REFUNDABLE = (payment) => payment.status === "completed" && !payment.original_payment_id && !isNegative(payment.amount)
  && !["voucher", "purchase", "nowpayments", "chargeback_reversal"].includes(payment.method);

function disputeLabel(dispute) {
  if (!dispute) return null;
  const reason = dispute.reason ? ` · ${dispute.reason.replaceAll("_", " ")}` : "";
  return `${DISPUTE_LABELS[dispute.status] || dispute.status} · ${dispute.amount}${reason} · opened ${when(dispute.opened_at)}`;
}

const REFUND_STATUS_LABELS = {
  pending: "Pending",
  succeeded: "Succeeded",
  failed: "Failed: the money was not returned, so it counts again",
};

function paymentRow(payment) {
  const extra = subLine(payment);
  // The payer's sentence, not the gateway's code: the code is in the detail.
  const failure = payment.status === "cancelled" && payment.failure_message;
  const open = () => openDetail(payment.id);
  return el("tr", {
    "data-id": payment.id, "data-status": payment.status, tabindex: "0", className: "clickable",
    "aria-haspopup": "dialog", "aria-label": `${payment.description}, ${payment.amount} ${payment.currency}, ${STATUS_LABELS[payment.status] || payment.status}: show details`,
    onclick: (event) => {
      if (!event.target.closest("button, a")) open();
    },
    onkeydown: (event) => {
      if (event.target === event.currentTarget && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault(); // Space would scroll the page
        open();
      }
    },
  },
  el("td", { className: "when" }, payment.completed_at ? when(payment.completed_at) : notYet()),
  el("td", { className: `num total${isNegative(payment.amount) ? " negative" : ""}` }, money(payment.amount, payment.currency)),
  el("td", { className: "status" }, badge(payment.status), payment.status === "pending" ? settleButtons(payment, "compact") : null,
    payment.status === "completed" ? receiptLink(payment) : null),
  el("td", { className: "desc" },
    el("div", { className: "description" }, payment.description),
    extra ? el("div", { className: "muted small sub" }, extra) : null,
    failure ? el("div", { className: "small failure" }, failure) : null),
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
    q: $("filter-q").value.trim(),
  };
}

async function loadPayments({ more = false } = {}) {
  say($("list-error"), "");
  const cursor = more ? state.cursor : null;
  const ticket = ++state.listTicket; // filters change quickly: only the latest request may fill the table
  const filters = filterQuery();
  const summary = more ? null : loadSummary(filters, ticket);
  try {
    const { data } = await call("GET", `/payments${query({ limit: PAGE_SIZE, ...filters, cursor })}`);
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
  await summary;
}

// The count and completed total(s) of everything the current filters and search match.
async function loadSummary(filters, ticket) {
  try {
    const { data } = await call("GET", `/payments/summary${query(filters)}`);
    if (ticket !== state.listTicket) return;
    const statuses = Object.keys(STATUS_LABELS)
      .filter((status) => data.statuses[status])
      .map((status) => `${data.statuses[status]} ${status}`);
    $("summary-count").textContent = `${data.count} ${data.count === 1 ? "payment" : "payments"}` +
      (statuses.length ? ` (${statuses.join(", ")})` : "");
    const totals = data.completed.map((total) =>
      el("span", { className: `total${isNegative(total.amount) ? " negative" : ""}`, "data-currency": total.currency },
        money(total.amount, total.currency)));
    $("summary-totals").replaceChildren(
      "Completed total: ",
      ...(totals.length ? totals.flatMap((node, index) => (index ? [", ", node] : [node])) : ["none"]),
    );
    show($("summary"), true);
  } catch (error) {
    if (ticket === state.listTicket) show($("summary"), false);
  }
}

async function refreshAll() {
  await Promise.all([
    loadPayments(),
    loadBalance().catch((error) => say($("list-error"), error.message)),
    loadAlert(),
    loadCards().then(loadTopup),
    loadOutbox(),
    loadOptions().catch((error) => say($("pay-terms"), error.message)),
  ]);
}

// ---- payment options (GET /payment-options, docs/account-settings.md) --------------------------------------
// The Make Payment form offers what the account's settings allow: disabled methods are absent, and the
// selected method's currencies, limits and surcharge are shown before paying (with what will be charged).

const minorDigits = (currency) => {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
};

// "12.50" -> 1250n in the currency's minor units; null if it is not a plain amount with at most those digits.
function toMinor(text, digits) {
  const match = /^\s*([0-9]+)(?:\.([0-9]*))?\s*$/.exec(String(text));
  if (!match || (match[2] || "").length > digits) return null;
  return BigInt(match[1] + (match[2] || "").padEnd(digits, "0"));
}

function fromMinor(minor, digits) {
  const text = minor.toString().padStart(digits + 1, "0");
  return digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text;
}

// The service's rule, exactly: fixed (account currency only) + amount x percent / 100, rounded half-up.
function surchargeOf(option, amountMinor, currency) {
  const digits = minorDigits(currency);
  const [whole, fraction = ""] = String(option.surcharge_percent).split(".");
  const scaled = BigInt(whole + fraction.padEnd(4, "0").slice(0, 4)); // percent x 10^4
  const denominator = 1000000n; // 100 x 10^4
  const percentPart = (amountMinor * scaled * 2n + denominator) / (2n * denominator);
  const fixed = currency === state.options.account_currency ? toMinor(option.surcharge_fixed, digits) || 0n : 0n;
  return percentPart + fixed;
}

async function loadOptions() {
  if (!state.canPay) return;
  const { data } = await call("GET", "/payment-options");
  state.options = data;
  const select = $("pay-method");
  const chosen = select.value;
  select.replaceChildren(...data.methods.map((entry) => el("option", { value: entry.method }, entry.label)));
  if (data.methods.some((entry) => entry.method === chosen)) select.value = chosen;
  showFieldsFor(select.value);
  showTerms();
}

function showTerms() {
  const options = state.options;
  const option = options && options.methods.find((entry) => entry.method === $("pay-method").value);
  if (!option) {
    say($("pay-terms"), "");
    say($("pay-charged"), "");
    return;
  }
  const account = options.account_currency;
  const parts = [`Currencies: ${option.currencies.join(", ")}`];
  if (option.min_amount) parts.push(`minimum ${moneyText(option.min_amount, account)}`);
  if (option.max_amount) parts.push(`maximum ${moneyText(option.max_amount, account)}`);
  if (options.max_balance) parts.push(`balance up to ${moneyText(options.max_balance, account)}`);
  const fixed = toMinor(option.surcharge_fixed, minorDigits(account)) || 0n;
  if (fixed || option.surcharge_percent !== "0") {
    const fee = [fixed ? moneyText(option.surcharge_fixed, account) : null, option.surcharge_percent !== "0" ? `${option.surcharge_percent}%` : null];
    parts.push(`surcharge ${fee.filter(Boolean).join(" + ")}`);
  }
  say($("pay-terms"), parts.join(" · "));
  const currency = $("pay-currency").value.trim().toUpperCase();
  const digits = minorDigits(currency);
  const amount = option.method === "voucher" ? null : toMinor($("pay-amount").value, digits);
  const surcharge = amount ? surchargeOf(option, amount, currency) : 0n;
  say($("pay-charged"), amount && surcharge
    ? `Surcharge ${moneyText(fromMinor(surcharge, digits), currency)}: you will be charged ${moneyText(fromMinor(amount + surcharge, digits), currency)} and credited ${moneyText(fromMinor(amount, digits), currency)}.`
    : "");
}

// ---- one payment's detail ------------------------------------------------------------------------------

function byLabel(by) {
  const [kind, ...rest] = String(by).split(":");
  if (kind === "gateway") {
    const [provider, ...event] = rest;
    return `${gatewayName(provider)}${event.length ? ` (${event.join(":")})` : ""}`;
  }
  if (kind === "operator") return `Operator ${rest.join(":")}`;
  if (kind === "customer") return `Customer ${rest.join(":")}`;
  if (by === "system:reconcile") return "Reconciliation";
  return by;
}

function paymentLink(id) {
  return el("button", { type: "button", className: "link mono", "data-payment": id, onclick: () => openDetail(id) }, id);
}

// Shown in a fixed-width font, to be read out or copied character by character.
const IDENTIFIERS = ["id", "reference", "gateway_reference", "failure_reason"];

function detailRows(payment) {
  const gateway = gatewayOfMethod(payment.method);
  const originalId = payment.original_payment_id || payment.refund_of;
  const rows = [
    ["amount", "Amount", el("span", { className: isNegative(payment.amount) ? "negative" : "" }, money(payment.amount, payment.currency))],
    ["status", "Status", badge(payment.status)],
    ["method", "Method", methodLabel(payment.method)],
    ["description", "Description", payment.description],
    ["id", "Payment ID", payment.id],
    ["created_at", "Created", when(payment.created_at)],
    ["completed_at", "Completed", payment.completed_at ? when(payment.completed_at) : notYet()],
    ["reference", payment.method === "bank_transfer" ? "Bank reference" : "Reference", payment.reference],
    ["gateway_reference", gateway ? `Gateway reference (${gatewayName(gateway)})` : "Gateway reference", payment.gateway_reference],
    ["card", "Card", payment.card && cardLabel(payment.card)],
    ["pending_reason", "Held by the gateway", payment.pending_reason],
    ["failure_message", "Why it failed", payment.failure_message],
    ["failure_reason", "Failure code", payment.failure_reason],
    ["refunded_amount", "Refunded", payment.refunded_amount && `${payment.refunded_amount} ${payment.currency}`],
    ["refunds", "Refunds", payment.refunds && payment.refunds.length
      ? el("ul", { className: "links" }, payment.refunds.map((id) => el("li", {}, paymentLink(id)))) : null],
    ["dispute", "Dispute", disputeLabel(payment.dispute)],
    ["original_payment_id", ORIGINAL_LABELS[payment.method] || "Original payment", originalId && paymentLink(originalId)],
    ["refund_status", "Refund at the gateway", payment.refund_status && REFUND_STATUS_LABELS[payment.refund_status]],
  ];
  return el("dl", { className: "details" }, rows
    .filter(([, , value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([key, term, value]) => [
      el("dt", {}, term),
      el("dd", { "data-field": key, className: IDENTIFIERS.includes(key) ? "mono" : null }, value),
    ]));
}

function historyList(history) {
  if (!history || !history.length) return null;
  return [
    el("h3", {}, "History"),
    el("ol", { className: "history" }, history.map((entry) =>
      el("li", { "data-by": entry.by },
        when(entry.at, dateTimeSeconds), " ", badge(entry.status), " ",
        el("span", { className: "by", title: entry.by }, `by ${byLabel(entry.by)}`),
        entry.note ? el("span", { className: "muted" }, ` · ${entry.note}`) : null))),
  ];
}

async function openDetail(id) {
  const dialog = $("detail");
  if (!dialog.open) {
    state.detailOpener = document.activeElement;
    dialog.showModal();
  }
  state.detailId = id;
  const ticket = ++state.detailTicket;
  $("detail-title").textContent = "Payment";
  $("detail-body").replaceChildren(el("p", { className: "muted" }, "Loading…"));
  $("detail-title").focus();
  try {
    const { data } = await call("GET", `/payments/${encodeURIComponent(id)}`);
    if (ticket !== state.detailTicket) return;
    renderDetail(data);
  } catch (error) {
    if (ticket === state.detailTicket) $("detail-body").replaceChildren(el("p", { className: "error", role: "alert" }, error.message));
  }
}

function renderDetail(payment) {
  $("detail").dataset.id = payment.id;
  $("detail-title").textContent = payment.description || "Payment";
  fill($("detail-body"),
    detailRows(payment),
    payment.status === "completed" ? el("p", {}, receiptLink(payment)) : null,
    payment.status === "pending" ? settleButtons(payment, "full") : null,
    REFUNDABLE(payment) ? refundForm(payment) : null,
    ...(historyList(payment.history) || []),
  );
  $("detail-title").focus(); // a followed link's button is gone: the new payment's title has the focus
}

function closeDetail() {
  const dialog = $("detail");
  state.detailTicket += 1;
  state.detailId = null;
  if (dialog.open) dialog.close();
}

function detailClosed() {
  state.detailId = null;
  delete $("detail").dataset.id;
  let opener = state.detailOpener;
  state.detailOpener = null;
  // The table may have been drawn again meanwhile (a refresh, a settle): then its new row for that payment.
  if (opener && !opener.isConnected && opener.dataset && opener.dataset.id) {
    opener = document.querySelector(`#payment-rows tr[data-id="${CSS.escape(opener.dataset.id)}"]`);
  }
  if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
}

// ---- settling with the gateway simulator (local only) ---------------------------------------------------

function settleButtons(payment, style) {
  if (!state.localTools || !state.canPay) return null;
  const gateway = gatewayOfMethod(payment.method);
  const how = gateway && payment.gateway_reference ? `the gateway simulator sends ${gatewayName(gateway)}'s webhook` : "an operator settles it (admin route)";
  const [paid, failed] = style === "compact" ? ["Complete", "Cancel"]
    : payment.method === "bank_transfer" ? ["Transfer received", "Cancel"] : ["Paid", "Failed"];
  return el("div", { className: `settle ${style}` },
    el("span", {}, "Simulate:"),
    el("span", { className: "buttons" },
      el("button", { type: "button", className: "small ok", title: `Local only: ${how}`, onclick: () => settle(payment, "complete") }, paid),
      el("button", { type: "button", className: "small", title: `Local only: ${how}`, onclick: () => settle(payment, "cancel") }, failed)),
  );
}

// The operator's refund (local only: the page signs an operator token from the stack, as settling does).
function refundForm(payment) {
  if (!state.localTools || !state.canPay) return null;
  const left = payment.refunded_amount ? `of ${payment.amount} (${payment.refunded_amount} refunded)` : `of ${payment.amount}`;
  const amount = el("input", { id: "refund-amount", name: "amount", inputMode: "decimal", placeholder: "all", "aria-describedby": "refund-help", autocomplete: "off" });
  const error = el("p", { className: "error", role: "alert", id: "refund-error" });
  const key = `refund-${payment.id}-${crypto.randomUUID()}`; // one refund per form: a retry after an error is the same refund
  return el("form", { className: "refund", onsubmit: (event) => { event.preventDefault(); refund(payment, amount.value.trim(), key, error); } },
    el("label", { for: "refund-amount" }, "Operator: refund"),
    amount,
    el("span", { id: "refund-help", className: "muted" }, `${payment.currency} ${left}, through ${gatewayName(gatewayOfMethod(payment.method)) || "a payout by hand"}`),
    el("button", { type: "submit", className: "small" }, "Send refund"),
    error);
}

async function refund(payment, amount, key, error) {
  say(error, "");
  try {
    const operator = await call("POST", "/web/token", { body: { customer: null, groups: ["operator"] }, token: null });
    const path = `/admin/customers/${encodeURIComponent(state.customer)}/payments/${encodeURIComponent(payment.id)}/refunds`;
    const body = amount ? { amount, reason: "refunded from the local web page" } : { reason: "refunded from the local web page" };
    const { data } = await call("POST", path, { body, headers: { "Idempotency-Key": key }, token: operator.data.token });
    await refreshAll();
    await openDetail(data.id);
  } catch (failure) {
    say(error, failure.message);
  }
}

async function settle(payment, outcome) {
  const provider = gatewayOfMethod(payment.method);
  notice(`Settling ${payment.amount} ${payment.currency}…`);
  try {
    let webhookSent = false;
    if (provider && payment.gateway_reference) {
      const body = { provider, ref: payment.gateway_reference, outcome: outcome === "complete" ? "success" : "failure" };
      const answer = await call("POST", "/web/sim/settle", { body, token: null });
      // A gateway that sends no webhook for this outcome (a failed Paystack transaction: reconciliation finds
      // it) leaves the payment to an operator, as in production.
      webhookSent = Boolean(answer.data && answer.data.event);
    }
    if (!webhookSent) {
      const operator = await call("POST", "/web/token", { body: { customer: null, groups: ["operator"] }, token: null });
      const path = `/admin/customers/${encodeURIComponent(state.customer)}/payments/${encodeURIComponent(payment.id)}/${outcome}`;
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
  if (state.detailId === paymentId) renderDetail(payment);
  const label = STATUS_LABELS[payment.status];
  notice(payment.status === "pending" ? "The payment is still pending; refresh later." : `Payment ${payment.amount} ${payment.currency}: ${label}.`);
}

function notice(text) {
  say($("notice"), text);
}

// ---- voucher lockout ------------------------------------------------------------------------------------

function voucherLocks() {
  try {
    return JSON.parse(sessionStorage.getItem(VOUCHER_LOCK_KEY)) || {};
  } catch {
    return {};
  }
}

function storedVoucherLock(customer) {
  const locks = voucherLocks();
  const until = customer && locks[customer] ? new Date(locks[customer]) : null;
  if (until && !(until > new Date())) {
    delete locks[customer];
    sessionStorage.setItem(VOUCHER_LOCK_KEY, JSON.stringify(locks));
    return null;
  }
  return until;
}

function rememberVoucherLock(error) {
  let until = error.body.locked_until ? new Date(error.body.locked_until) : null;
  const retryAfter = Number(error.headers.get("Retry-After"));
  if (!(until > new Date()) && retryAfter > 0) until = new Date(Date.now() + retryAfter * 1000);
  if (!(until > new Date()) || !state.customer) return false;
  const locks = voucherLocks();
  locks[state.customer] = until.toISOString();
  sessionStorage.setItem(VOUCHER_LOCK_KEY, JSON.stringify(locks));
  showVoucherLock(until);
  return true;
}

// Shown, with the voucher Pay disabled, until the API's lockout ends (then it clears itself).
function showVoucherLock(until) {
  clearTimeout(state.voucherTimer);
  state.voucherLockedUntil = until;
  const lock = $("voucher-lock");
  if (until) {
    lock.replaceChildren("Vouchers are locked after too many wrong codes, until ", when(until.toISOString(), dateTimeSeconds), ".");
    show(lock, true);
    // Checked again at the end, or within the hour (a longer setTimeout delay would overflow and fire at once).
    const wait = Math.min(Math.max(0, until - new Date()) + 50, 3_600_000);
    state.voucherTimer = setTimeout(() => showVoucherLock(storedVoucherLock(state.customer)), wait);
  } else {
    lock.replaceChildren();
    show(lock, false);
  }
  updatePayButton();
}

function updatePayButton() {
  const locked = $("pay-method").value === "voucher" && Boolean(state.voucherLockedUntil);
  $("pay-button").disabled = state.paying || locked;
}

// ---- Make Payment ------------------------------------------------------------------------------------------

function showFieldsFor(method) {
  for (const node of document.querySelectorAll("#pay-form [data-for]")) {
    const rule = node.dataset.for;
    show(node, rule.startsWith("!") ? method !== rule.slice(1) : method === rule);
  }
  clearFieldErrors();
  updatePayButton();
}

function clearFieldErrors() {
  for (const node of document.querySelectorAll("#pay-form [aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    node.removeAttribute("aria-describedby");
  }
  for (const node of document.querySelectorAll("#pay-form .field-error")) node.remove();
  say($("pay-error"), "");
}

function inputFor(field) {
  if (!field) return null;
  const form = $("pay-form");
  const input = form.querySelector(`[data-field="${CSS.escape(field)}"]`) ||
    (field.startsWith("card") ? form.querySelector("[data-field='card.number']") : null);
  return input && !input.closest("[hidden]") ? input : null;
}

// Every problem the API listed (`errors`) is shown at its field; those about no visible field go on top.
function showPayError(error) {
  const problems = Array.isArray(error.body.errors) && error.body.errors.length
    ? error.body.errors : [{ field: error.body.field || null, message: error.message }];
  const byInput = new Map();
  const general = [];
  for (const problem of problems) {
    const input = inputFor(problem.field);
    if (!input) general.push(problem.message);
    else byInput.set(input, [...(byInput.get(input) || []), problem.message]);
  }
  for (const [input, messages] of byInput) {
    const id = `error-${input.id}`;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    const holder = input.closest(".field") || input.closest("label");
    holder.append(el("p", { id, className: "field-error", "data-field": input.dataset.field }, messages.join(" ")));
  }
  say($("pay-error"), general.join(" "));
  const first = byInput.keys().next().value;
  if (first) first.focus();
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
  if (method === "credit_card" && $("pay-saved-card").value) { // saved cards block
    body.saved_payment_method = $("pay-saved-card").value;
  } else if (method === "credit_card") {
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
  if (state.paying) return;
  clearFieldErrors();
  hideResult();
  let body = paymentBody();
  clearCardFields();
  const session = state.session;
  // A retry of the same submission whose outcome is unknown reuses its key, so it is never charged twice;
  // only a digest is kept, never the card fields.
  const fingerprint = await digest(JSON.stringify(body));
  const key = state.attempt && state.attempt.fingerprint === fingerprint ? state.attempt.key : crypto.randomUUID();
  state.attempt = { fingerprint, key };
  const button = $("pay-button");
  state.paying = true;
  updatePayButton();
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
      // The payer's sentence; the gateway's code (failure_reason) is in the payment's detail.
      const declined = error.body.payment;
      showResult("error", "Card declined", [el("p", {}, declined.failure_message || error.message)], declined);
      await refreshAll();
    } else if (error.status === 429 && body.method === "voucher" && rememberVoucherLock(error)) {
      say($("pay-error"), "");
    } else {
      showPayError(error);
    }
  } finally {
    body = null;
    if (session === state.session) {
      state.paying = false;
      button.textContent = "Pay";
      updatePayButton();
    }
  }
}

function hideResult() {
  $("pay-result").replaceChildren();
  show($("pay-result"), false);
}

function showResult(kind, title, content, payment) {
  $("pay-result").className = `result ${kind}`;
  fill($("pay-result"),
    el("h3", {}, title),
    ...content,
    payment ? el("p", {}, el("button", { type: "button", className: "link", onclick: () => openDetail(payment.id) }, "Payment details")) : null,
  );
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
    showResult("info", `Continue at ${methodLabel(payment.method)}`, [el("p", {}, `Taking you to ${url.host}…`)]);
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
    ], payment);
  } else if (type === "stripe_sdk") {
    const intent = payment.gateway_reference || action.client_secret.split("_secret_")[0];
    showResult("info", "3-D Secure required", [
      el("p", {}, `Your bank asks you to confirm this card payment of ${paid}. It stays Pending until you do.`),
      el("button", { type: "button", className: "primary", onclick: () => leaveFor(`${state.config.simulator}/stripe/3ds/${intent}`, payment) },
        "Confirm with your bank"),
    ], payment);
  } else if (type === "razorpay_checkout") {
    showResult("info", "Razorpay checkout", [
      el("p", {}, `Order ${action.order_id} for ${action.amount} ${action.currency}. In the portal Razorpay's checkout window opens here; locally the simulator stands in for it.`),
      settleButtons(payment, "full"),
    ], payment);
  } else if (payment.status === "completed") {
    showResult("ok", "Payment completed", [el("p", {}, `${paid} by ${methodLabel(payment.method)}.`)], payment);
  } else {
    showResult("info", `Payment ${STATUS_LABELS[payment.status]}`, [el("p", {}, `${paid} by ${methodLabel(payment.method)}.`)], payment);
  }
}

// ---- receipts (docs/receipts.md) -------------------------------------------------------------------------------

function receiptLink(payment) {
  return el("button", {
    type: "button", className: "link receipt", "data-receipt": payment.id,
    "aria-label": `Receipt of ${payment.id} (PDF)`, onclick: (event) => openReceipt(payment.id, event.currentTarget),
  }, "Receipt");
}

// The route needs the token, which a plain link cannot send: fetch the PDF, then open it from a blob URL.
async function openReceipt(id, button) {
  const session = state.session;
  button.disabled = true;
  say($("list-error"), "");
  try {
    const response = await fetch(`/payments/${encodeURIComponent(id)}/receipt`, { headers: { Authorization: `Bearer ${state.token}` } });
    if (session !== state.session) return;
    if (response.status === 401) {
      signOut("Signed out: the token was refused.");
      return;
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new ApiError(response.status, body);
    }
    const url = URL.createObjectURL(new Blob([await response.arrayBuffer()], { type: "application/pdf" }));
    state.lastReceipt = { id, url };
    if (!window.open(url, "_blank")) { // a blocked pop-up: download it instead
      el("a", { href: url, download: `receipt-${id}.pdf` }).click();
    }
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    say($("list-error"), error.message);
  } finally {
    button.disabled = false;
  }
}

// ---- what the local stack sent: GET /_local/outbox (docs/events.md#locally) -------------------------------------

const OUTBOX_SHOWN = 5;

async function loadOutbox() {
  if (!state.localTools) return;
  let data;
  try {
    const response = await fetch("/_local/outbox");
    if (!response.ok) return;
    data = await response.json();
  } catch {
    return;
  }
  show($("outbox-card"), true);
  const emails = (data.emails || []).slice(-OUTBOX_SHOWN).reverse();
  const events = (data.events || []).slice(-OUTBOX_SHOWN).reverse();
  fill($("outbox-emails"), emails.length ? emails.map((email) =>
    el("li", { className: "email" },
      el("div", { className: "subject" }, email.subject),
      el("div", { className: "muted small" }, `to ${email.to.join(", ")}`, email.sent_at ? [" · ", when(email.sent_at)] : null),
      email.attachments.length ? el("div", { className: "muted small" }, `📎 ${email.attachments.join(", ")}`) : null))
    : [el("li", { className: "muted" }, "No e-mails sent yet")]);
  fill($("outbox-events"), events.length ? events.map((event) => {
    const payment = (event.detail && event.detail.payment) || {};
    return el("li", { className: "event small" },
      el("span", { className: "mono" }, event["detail-type"]), " ",
      payment.amount ? `${payment.amount} ${payment.currency}` : null,
      payment.id ? el("span", { className: "muted" }, ` · ${payment.id}`) : null);
  }) : [el("li", { className: "muted" }, "No events yet")]);
}

// ---- CSV export ----------------------------------------------------------------------------------------------

async function download() {
  const button = $("download");
  button.disabled = true;
  say($("list-error"), "");
  try {
    // What the table shows: the same filters and search, newest first.
    const { status, from, to, q } = filterQuery();
    const body = { status: status || undefined, from: from || undefined, to: to || undefined, q: q || undefined, bom: $("download-excel").checked };
    let { data } = await call("POST", "/payments/exports", { body });
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
  await watch(id, `Back from ${method ? methodLabel(method) : "the gateway"}: waiting for its confirmation…`);
}

function searchSoon() {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => loadPayments(), SEARCH_DELAY_MS);
}

// ---- low-balance alert (docs/alerts.md): GET/PUT /alerts/low-balance ---------------------------------------

function showAlert(alert) {
  $("alert-currency").textContent = alert.currency;
  $("alert-threshold").value = alert.threshold ?? "";
  $("alert-reset").value = alert.threshold !== null && alert.reset_threshold !== alert.threshold ? alert.reset_threshold : "";
  $("alert-emails").value = (alert.emails || []).join(", ");
  say($("alert-state"), alert.threshold === null
    ? "No alert set."
    : alert.state === "below"
      ? `Below ${alert.threshold} ${alert.currency}: alerts again after it rises above ${alert.reset_threshold}.`
      : `Armed: alerts when the balance falls below ${alert.threshold} ${alert.currency}.`);
  show($("alert-buttons"), state.canPay);
  for (const id of ["alert-threshold", "alert-reset", "alert-emails"]) $(id).disabled = !state.canPay;
}

async function loadAlert() {
  say($("alert-error"), "");
  try {
    showAlert((await call("GET", "/alerts/low-balance")).data);
  } catch (error) {
    say($("alert-error"), error.message);
  }
}

async function saveAlert(threshold) {
  say($("alert-error"), "");
  const emails = $("alert-emails").value.split(",").map((e) => e.trim()).filter(Boolean);
  const body = { currency: $("alert-currency").textContent, threshold, emails };
  if (threshold !== null && $("alert-reset").value.trim()) body.reset_threshold = $("alert-reset").value.trim();
  try {
    showAlert((await call("PUT", "/alerts/low-balance", { body })).data);
  } catch (error) {
    say($("alert-error"), error.message);
  }
}

$("alert-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveAlert($("alert-threshold").value.trim() || null);
});
$("alert-off").addEventListener("click", () => saveAlert(null));

// ---- auto top-up (docs/auto-topup.md): GET/PUT /auto-topup ---------------------------------------------------
// Turning it on is the customer's consent to charge the chosen card with nobody present: the terms are shown
// before the button, and the service records them as a mandate.

const TOPUP_STATES = {
  active: "On",
  disabled: "Off",
  requires_action: "Waiting for you: your bank asked to confirm the last top-up",
};

function showTopup(topup) {
  state.topup = topup;
  const usable = (state.savedCards || []).filter((card) => card.state === "active");
  $("topup-card-choice").replaceChildren(...(usable.length
    ? usable.map((card) => el("option", { value: card.id }, savedCardLabel(card)))
    : [el("option", { value: "" }, "Save a card first")]));
  if (topup.payment_method_id && usable.some((card) => card.id === topup.payment_method_id)) {
    $("topup-card-choice").value = topup.payment_method_id;
  }
  $("topup-currency").textContent = topup.currency;
  $("topup-threshold").value = topup.threshold ?? "";
  $("topup-amount").value = topup.amount ?? "";
  $("topup-max").value = String(topup.max_per_day ?? 3);
  const last = topup.last_attempt;
  const lines = [topup.enabled ? TOPUP_STATES[topup.state] || topup.state : "Off"];
  if (topup.enabled) lines.push(`charges ${topup.amount} ${topup.currency} when the balance falls below ${topup.threshold} ${topup.currency}`);
  if (topup.reason) lines.push(`turned off: ${topup.reason.replaceAll("_", " ")}`);
  if (topup.failures) lines.push(`${topup.failures} declined in a row`);
  if (last) lines.push(`last top-up ${last.amount} ${last.currency}: ${STATUS_LABELS[last.status] || last.status}`);
  say($("topup-state"), lines.join(" · "));
  const waiting = topup.enabled && topup.state === "requires_action" && state.canPay;
  fill($("topup-action"), ...(waiting ? [
    el("p", {}, `Your bank asks you to confirm the automatic top-up${last ? ` of ${last.amount} ${last.currency}` : ""}. No other top-up is made until you do.`),
    el("button", { type: "button", className: "primary", id: "topup-confirm", onclick: confirmTopup }, "Confirm the top-up"),
  ] : []));
  show($("topup-action"), waiting);
  showTopupConsent();
  show($("topup-buttons"), state.canPay);
  for (const id of ["topup-card-choice", "topup-threshold", "topup-amount", "topup-max"]) $(id).disabled = !state.canPay;
}

function showTopupConsent() {
  const card = (state.savedCards || []).find((entry) => entry.id === $("topup-card-choice").value);
  const threshold = $("topup-threshold").value.trim();
  const amount = $("topup-amount").value.trim();
  const currency = $("topup-currency").textContent;
  say($("topup-consent"), card && threshold && amount
    ? `By turning it on you allow us to charge ${savedCardLabel(card)} ${amount} ${currency} without asking, each time your balance falls below ${threshold} ${currency}, at most ${$("topup-max").value.trim() || 3} times a day.`
    : "");
}

async function loadTopup() {
  say($("topup-error"), "");
  try {
    showTopup((await call("GET", "/auto-topup")).data);
  } catch (error) {
    say($("topup-error"), error.message);
  }
}

async function saveTopup(enabled) {
  say($("topup-error"), "");
  const body = { enabled, currency: $("topup-currency").textContent };
  if (enabled) {
    Object.assign(body, {
      payment_method_id: $("topup-card-choice").value || null,
      threshold: $("topup-threshold").value.trim(),
      amount: $("topup-amount").value.trim(),
      max_per_day: Number($("topup-max").value.trim() || 3),
    });
  }
  try {
    showTopup((await call("PUT", "/auto-topup", { body })).data);
  } catch (error) {
    say($("topup-error"), error.message);
  }
}

// The bank held an off-session top-up (requires_action): confirm it on-session, 3-D Secure if the bank asks. In the
// portal Stripe.js handleNextAction(client_secret) runs the challenge; locally the simulator's page stands in for it.
async function confirmTopup() {
  say($("topup-error"), "");
  $("topup-confirm").disabled = true;
  try {
    const { data } = await call("POST", "/auto-topup/authenticate");
    const action = data.next_action;
    if (action && action.type === "stripe_sdk") {
      const intent = data.payment.gateway_reference || action.client_secret.split("_secret_")[0];
      leaveFor(`${state.config.simulator}/stripe/3ds/${intent}`, data.payment);
      return;
    }
    await refreshAll();  // settled at once (no challenge, or declined): the card shows its outcome
  } catch (error) {
    say($("topup-error"), error.message);
    $("topup-confirm").disabled = false;
  }
}

$("topup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveTopup(true);
});
$("topup-off").addEventListener("click", () => saveTopup(false));
for (const id of ["topup-card-choice", "topup-threshold", "topup-amount", "topup-max"]) {
  $(id).addEventListener("input", showTopupConsent);
}

// ---- saved cards (docs/saved-cards.md): GET/POST/DELETE /payment-methods, POST /payment-methods/{id}/default -----

const CARD_WAIT_MS = 60000;

function savedCardLabel(card) {
  const brand = card.brand ? card.brand[0].toUpperCase() + card.brand.slice(1) : "Card";
  const expiry = card.exp_month ? ` · ${String(card.exp_month).padStart(2, "0")}/${String(card.exp_year).slice(-2)}` : "";
  return `${brand} •••• ${card.last4 || "????"}${expiry}`;
}

function showCards(cards) {
  state.savedCards = cards;
  fill($("saved-cards"), cards.length ? cards.map((card) =>
    el("li", { className: "saved-card", "data-card": card.id },
      el("span", { className: "card-label" }, savedCardLabel(card)),
      card.default ? el("span", { className: "badge completed" }, "Default") : null,
      card.state === "pending" ? el("span", { className: "badge pending" }, "Needs 3-D Secure") : null,
      state.canPay && card.state === "active" && !card.default
        ? el("button", { type: "button", className: "link", onclick: () => makeDefaultCard(card.id) }, "Make default") : null,
      state.canPay
        ? el("button", { type: "button", className: "link danger", onclick: () => removeCard(card.id) }, "Remove") : null))
    : [el("li", { className: "muted" }, "No saved cards")]);
  // Make Payment's choice of card: the active ones, the default first.
  const select = $("pay-saved-card");
  const chosen = select.value;
  const usable = cards.filter((card) => card.state === "active").sort((a, b) => Number(b.default) - Number(a.default));
  select.replaceChildren(el("option", { value: "" }, "A new card"),
    ...usable.map((card) => el("option", { value: card.id }, savedCardLabel(card))));
  select.value = usable.some((card) => card.id === chosen) ? chosen : "";
  showSavedCardChoice();
  show($("card-form"), state.canPay);
  if (state.topup) showTopup(state.topup); // the auto top-up's choice of card follows the cards
}

function showSavedCardChoice() {
  const fields = document.querySelector("#pay-form .card-fields");
  if ($("pay-method").value === "credit_card") show(fields, !$("pay-saved-card").value);
}

async function loadCards() {
  say($("cards-error"), "");
  try {
    showCards((await call("GET", "/payment-methods")).data.items);
  } catch (error) {
    say($("cards-error"), error.message);
  }
}

function cardAction(content) {
  fill($("card-action"), ...content);
  show($("card-action"), content.length > 0);
}

async function saveCard(event) {
  event.preventDefault();
  say($("cards-error"), "");
  cardAction([]);
  let body = { card: {
    number: $("save-card-number").value.replace(/[\s-]/g, ""),
    exp_month: $("save-card-exp-month").value.trim(),
    exp_year: $("save-card-exp-year").value.trim(),
    cvc: $("save-card-cvc").value.trim(),
  } };
  for (const id of ["save-card-number", "save-card-exp-month", "save-card-exp-year", "save-card-cvc"]) $(id).value = "";
  $("card-save").disabled = true;
  try {
    const { data } = await call("POST", "/payment-methods", { body, headers: { "Idempotency-Key": crypto.randomUUID() } });
    await loadCards();
    if (data.next_action && data.next_action.type === "stripe_sdk") {
      // 3-D Secure on setup: in the portal Stripe.js handleNextAction(client_secret); locally the simulator's page.
      const setup = data.next_action.client_secret.split("_secret_")[0];
      cardAction([
        el("p", {}, `Your bank asks you to confirm ${savedCardLabel(data)} before it can be used.`),
        el("button", { type: "button", className: "primary", onclick: () => confirmCard(data.id, setup) }, "Confirm with your bank"),
      ]);
    } else {
      cardAction([el("p", {}, `${savedCardLabel(data)} saved.`)]);
    }
  } catch (error) {
    say($("cards-error"), error.message);
  } finally {
    body = null;
    $("card-save").disabled = false;
  }
}

async function confirmCard(cardId, setup) {
  window.open(`${state.config.simulator}/stripe/3ds/${setup}`, "_blank");
  cardAction([el("p", {}, "Waiting for your bank's confirmation…")]);
  const until = Date.now() + CARD_WAIT_MS;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await loadCards();
    const card = (state.savedCards || []).find((c) => c.id === cardId);
    if (!card || card.state !== "pending") {
      cardAction([el("p", {}, card ? `${savedCardLabel(card)} is ready to use.` : "The bank did not confirm the card.")]);
      return;
    }
  }
  cardAction([el("p", {}, "Still waiting for the bank: refresh later.")]);
}

async function makeDefaultCard(cardId) {
  say($("cards-error"), "");
  try {
    await call("POST", `/payment-methods/${encodeURIComponent(cardId)}/default`, { body: {} });
    await loadCards();
  } catch (error) {
    say($("cards-error"), error.message);
  }
}

async function removeCard(cardId) {
  say($("cards-error"), "");
  try {
    await call("DELETE", `/payment-methods/${encodeURIComponent(cardId)}`);
    await loadCards();
  } catch (error) {
    say($("cards-error"), error.message);
  }
}

$("card-form").addEventListener("submit", saveCard);
$("pay-saved-card").addEventListener("change", showSavedCardChoice);
$("pay-method").addEventListener("change", () => queueMicrotask(showSavedCardChoice)); // after showFieldsFor

async function start() {
  $("picker-form").addEventListener("submit", pickerSignIn);
  $("paste-form").addEventListener("submit", pasteSignIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("pay-form").addEventListener("submit", pay);
  $("pay-method").addEventListener("change", (event) => {
    showFieldsFor(event.target.value);
    showTerms();
    hideResult();
  });
  $("pay-amount").addEventListener("input", showTerms);
  $("pay-currency").addEventListener("input", showTerms);
  $("filters").addEventListener("change", (event) => {
    if (event.target.id !== "filter-q") loadPayments(); // the search box has its own, quicker trigger
  });
  $("filter-q").addEventListener("input", searchSoon);
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the search box: search now
    clearTimeout(state.searchTimer);
    loadPayments();
  });
  $("filter-clear").addEventListener("click", () => {
    clearTimeout(state.searchTimer);
    $("filters").reset();
    loadPayments();
  });
  $("load-more").addEventListener("click", () => loadPayments({ more: true }));
  $("refresh").addEventListener("click", () => refreshAll());
  $("download").addEventListener("click", download);
  $("detail-close").addEventListener("click", () => closeDetail());
  $("detail").addEventListener("close", detailClosed); // Escape, the close button, or signing out
  $("detail").addEventListener("click", (event) => {
    if (event.target === event.currentTarget) closeDetail(); // a click on the backdrop
  });
  await loadConfig();
  showFieldsFor($("pay-method").value);
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (!saved) {
    signOut("");
    return;
  }
  if (!signIn(saved)) return;
  await refreshAll();
  await backFromGateway();
}

start();
