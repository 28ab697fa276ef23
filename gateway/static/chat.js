// The gateway's chat page: plain JavaScript, no build step, nothing from another host.
// It talks to the gateway's own HTTP API: the API key (when the gateway wants one) is kept
// in sessionStorage and sent as `Authorization: Bearer`; the event stream, which an
// EventSource cannot send headers with, gets it as an HttpOnly cookie that
// `POST /ui/session` sets (only the events route reads it).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "agent-gateway-api-key";
const RUNNING = new Set(["thinking", "waiting_approval"]);
const page = {
  config: { auth: true, temporal_ui_url: null, namespace: "default", events: false },
  current: null, // { id, agent }
  poll: null,
  stream: null,
  live: new Map(), // "turn/step" -> the <li> of a reply being written
  running: null, // { turn, message_id } of the turn the stream shows
  turns: 0, // turns done, as the state last said
  outcome: null, // how the last turn ended, when it did not complete
  expect: 0, // turns done once every turn sent from here is answered
};

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body, headers = {}) {
  const sent = { ...headers };
  if (apiKey()) sent.Authorization = `Bearer ${apiKey()}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (response.headers.get("content-type") || "").includes("json");
  const data = json ? await response.json() : null;
  if (!response.ok) {
    if (response.status === 401) $("key-form").hidden = false;
    const error = new Error(data && data.message ? data.message : response.statusText);
    error.status = response.status;
    error.code = data && data.error;
    throw error;
  }
  return data;
}

const enc = encodeURIComponent;

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

// --- the list --------------------------------------------------------------------------

async function loadList() {
  let listed;
  try {
    listed = await api("GET", "/conversations?page_size=50");
  } catch (error) {
    showError(`listing conversations: ${error.message}`);
    return;
  }
  const body = $("conversations").tBodies[0];
  body.replaceChildren();
  for (const item of listed.conversations) {
    const row = body.insertRow();
    row.dataset.id = item.conversation_id;
    if (page.current && page.current.id === item.conversation_id) row.className = "current";
    cell(row, item.conversation_id);
    cell(row, item.agent);
    cell(row, item.status || item.workflow_status.toLowerCase());
    cell(row, item.turn_count);
    row.addEventListener("click", () => openConversation(item.conversation_id, item.agent));
  }
}

// --- one conversation ------------------------------------------------------------------

function workflowUrl(id) {
  const ui = page.config.temporal_ui_url;
  if (!ui) return null;
  return `${ui.replace(/\/$/, "")}/namespaces/${enc(page.config.namespace)}/workflows/${enc(id)}`;
}

// an empty panel for conversation `id`, its stream closed, as `current`
function showConversation(id, agent, exists) {
  closeStream();
  page.outcome = null;
  page.expect = 0;
  page.current = { id, agent, exists };
  page.live.clear();
  $("conversation").hidden = false;
  $("title").textContent = `${id} · ${agent}`;
  const link = workflowUrl(id);
  $("workflow-link").hidden = !link;
  if (link) $("workflow-link").href = link;
  $("transcript").replaceChildren();
  $("tool-calls").tBodies[0].replaceChildren();
  $("approvals").replaceChildren();
}

async function openConversation(id, agent) {
  showConversation(id, agent || "claims-assistant", true);
  for (const row of $("conversations").tBodies[0].rows) {
    row.className = row.dataset.id === id ? "current" : "";
  }
  const state = await refresh();
  if (state && page.config.events) openStream("now");
}

function startNew(id, agent) {
  showConversation(id, agent, false);
  page.turns = 0;
  $("status").textContent = "new";
  $("text").focus();
}

async function refresh() {
  const current = page.current;
  if (!current) return null;
  let state;
  try {
    state = await api("GET", `/conversations/${enc(current.id)}`);
  } catch (error) {
    if (error.status === 404 && !current.exists) return null;
    showError(error.message);
    return null;
  }
  if (page.current !== current) return null;
  current.exists = true;
  render(state);
  return state;
}

function render(state) {
  const speaking = state.active_agent ? `, speaking: ${state.active_agent}` : "";
  const outcome = page.outcome ? ` · ${page.outcome}` : "";
  $("status").textContent = `${state.status}, ${state.turn_count} turns${speaking}${outcome}`;
  $("title").textContent = `${page.current.id} · ${state.agent}`;
  page.current.agent = state.agent;
  page.turns = state.turn_count;
  const transcript = $("transcript");
  transcript.replaceChildren();
  for (const message of state.messages) {
    if (message.role === "system") continue;
    const li = document.createElement("li");
    li.className = message.role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent =
      message.role === "user" ? "you" : message.role === "tool" ? `tool ${message.name || ""}` : message.speaker || state.agent;
    li.append(who, document.createTextNode(message.content));
    transcript.append(li);
  }
  for (const li of page.live.values()) transcript.append(li); // replies being written
  transcript.scrollTop = transcript.scrollHeight;
  renderToolCalls(state);
  renderApprovals(state.pending_approvals);
  const running = RUNNING.has(state.status);
  $("cancel").hidden = !(running && page.config.cancel);
  return running;
}

function renderToolCalls(state) {
  const body = $("tool-calls").tBodies[0];
  body.replaceChildren();
  for (const call of state.tool_calls) toolRow(call.id, call.name, call.arguments, call.status, call.result);
  for (const pending of state.pending_approvals) {
    toolRow(pending.tool_call_id, pending.name, pending.arguments, "waiting", "waits for approval");
  }
}

function toolRow(id, name, args, status, result) {
  const body = $("tool-calls").tBodies[0];
  let row = [...body.rows].find((r) => r.dataset.id === id);
  if (!row) {
    row = body.insertRow();
    row.dataset.id = id;
    row.dataset.testid = "tool-call";
    cell(row, "");
    cell(row, "");
    cell(row, "");
    cell(row, "");
  }
  row.cells[0].textContent = name;
  row.cells[0].title = id;
  if (args != null) row.cells[1].textContent = args;
  row.cells[2].textContent = status;
  row.cells[2].className = `status-${status}`;
  if (result != null) row.cells[3].textContent = result;
}

function renderApprovals(pending) {
  const box = $("approvals");
  box.replaceChildren();
  for (const call of pending) {
    const div = document.createElement("div");
    div.className = "pending";
    div.dataset.toolCallId = call.tool_call_id;
    const what = document.createElement("p");
    what.append(`${call.name} waits for your approval: `);
    const code = document.createElement("code");
    code.textContent = call.arguments;
    what.append(code);
    const approve = document.createElement("button");
    approve.textContent = "Approve";
    approve.addEventListener("click", () => decide(call.tool_call_id, true));
    const deny = document.createElement("button");
    deny.textContent = "Deny";
    deny.addEventListener("click", () => decide(call.tool_call_id, false));
    div.append(what, approve, " ", deny);
    box.append(div);
  }
}

async function decide(toolCallId, approve) {
  const id = page.current.id;
  try {
    await api("POST", `/conversations/${enc(id)}/tool-decisions`, {
      tool_call_id: toolCallId,
      approve,
      reason: approve ? "approved on the chat page" : "denied on the chat page",
    });
    showError("");
  } catch (error) {
    showError(error.message);
  }
  pollWhileRunning();
}

function newMessageId() {
  const random = crypto.randomUUID
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  return `m-${random}`;
}

async function send(text) {
  const current = page.current;
  const first = !current.exists;
  const body = first ? { text, agent: current.agent } : { text };
  showError("");
  try {
    await api("POST", `/conversations/${enc(current.id)}/messages?mode=async`, body, {
      "Idempotency-Key": newMessageId(),
    });
  } catch (error) {
    showError(error.message);
    return;
  }
  current.exists = true;
  page.expect = Math.max(page.expect, page.turns) + 1;
  const li = document.createElement("li");
  li.className = "user";
  li.textContent = text;
  $("transcript").append(li);
  if (page.config.events && !page.stream) openStream(first ? null : "now");
  if (!page.config.events) pollWhileRunning();
  $("cancel").hidden = !page.config.cancel;
  if (first) loadList();
}

async function cancelTurn() {
  try {
    await api("POST", `/conversations/${enc(page.current.id)}/cancel`, {});
  } catch (error) {
    showError(error.message);
  }
}

// --- without the event stream: poll the state while a turn runs ------------------------

function pollWhileRunning() {
  if (page.poll) return;
  const current = page.current;
  const tick = async () => {
    if (page.current !== current) {
      page.poll = null;
      return;
    }
    const state = await refresh();
    if (state && !RUNNING.has(state.status) && state.turn_count >= page.expect) {
      page.poll = null;
      loadList();
      return;
    }
    page.poll = setTimeout(tick, 400);
  };
  page.poll = setTimeout(tick, 200);
}

// --- the event stream (Server-Sent Events) ---------------------------------------------

function closeStream() {
  if (page.stream) page.stream.close();
  page.stream = null;
  if (page.poll) clearTimeout(page.poll);
  page.poll = null;
}

function openStream(after) {
  const query = after ? `?after=${enc(after)}` : "";
  const url = `/conversations/${enc(page.current.id)}/events${query}`;
  const stream = new EventSource(url);
  page.stream = stream;
  const on = (type, handle) =>
    stream.addEventListener(type, (message) => {
      if (page.stream === stream) handle(JSON.parse(message.data));
    });
  on("turn_started", (event) => {
    page.running = event;
    $("cancel").hidden = !page.config.cancel;
    $("status").textContent = `thinking (turn ${event.turn})`;
  });
  on("model_started", (event) => {
    const who = event.agent ? `${event.agent} is thinking` : "thinking";
    $("status").textContent = `${who} (turn ${event.turn})`;
  });
  on("text", (event) => liveReply(event).append(event.text || ""));
  on("text_reset", (event) => liveReply(event).replaceChildren(speaker(event)));
  on("tool_started", (event) => toolRow(event.tool_call_id, event.name, event.arguments, "running", ""));
  on("tool_finished", (event) => toolRow(event.tool_call_id, event.name, null, event.status, event.result));
  on("approval_needed", () => refresh());
  on("approval_decided", (event) => {
    toolRow(event.tool_call_id, event.name || "", null, event.status === "ok" ? "approved" : event.status, null);
    refresh();
  });
  on("turn_finished", async (event) => {
    for (const li of page.live.values()) {
      li.classList.remove("streaming");
      if (event.status === "interrupted") li.classList.add("interrupted");
    }
    page.live.clear();
    page.running = null;
    page.outcome = event.status === "completed" ? null : `turn ${event.turn}: ${event.status}`;
    $("cancel").hidden = true;
    await refresh();
    loadList();
  });
  stream.onerror = () => {
    // EventSource reconnects by itself, with Last-Event-ID; a refused stream stays closed
    if (stream.readyState === EventSource.CLOSED && page.stream === stream) {
      page.stream = null;
      pollWhileRunning();
    }
  };
}

function speaker(event) {
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = event.agent || page.current.agent;
  return who;
}

function liveReply(event) {
  const key = `${event.turn}/${event.step}`;
  let li = page.live.get(key);
  if (!li) {
    li = document.createElement("li");
    li.className = "assistant streaming";
    li.dataset.testid = "live-reply";
    li.append(speaker(event));
    page.live.set(key, li);
    $("transcript").append(li);
  }
  return li;
}

// --- start -----------------------------------------------------------------------------

async function streamCookie() {
  // the key, as the cookie the events route accepts from an EventSource
  if (!page.config.events || !page.config.auth || !apiKey()) return;
  try {
    await api("POST", "/ui/session", {});
  } catch (error) {
    showError(`the stream's cookie: ${error.message}`);
  }
}

async function loadConfig() {
  try {
    const response = await fetch("/ui/config");
    if (response.ok) page.config = await response.json();
  } catch (error) {
    showError(`the gateway's page settings: ${error.message}`);
  }
  const ui = page.config.temporal_ui_url;
  $("temporal-ui").hidden = !ui;
  if (ui) $("temporal-ui").href = ui;
  $("key-form").hidden = !page.config.auth || Boolean(apiKey());
}

function wire() {
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    $("api-key").value = "";
    $("key-form").hidden = true;
    showError("");
    await streamCookie();
    loadList();
  });
  $("new-form").addEventListener("submit", (event) => {
    event.preventDefault();
    startNew($("new-id").value.trim(), $("new-agent").value.trim());
    $("new-id").value = `web-${newMessageId().slice(2, 10)}`;
  });
  $("refresh").addEventListener("click", loadList);
  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim() || !page.current) return;
    $("text").value = "";
    send(text);
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  $("cancel").addEventListener("click", cancelTurn);
  $("new-id").value = `web-${newMessageId().slice(2, 10)}`;
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  await loadConfig();
  await streamCookie();
  loadList();
});
