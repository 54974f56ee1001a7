#!/usr/bin/env node
// Drives Debian's headless Chromium for test-50-browser.sh over the Chrome
// DevTools Protocol, with nothing but Node's standard library: Chromium is
// started with --remote-debugging-pipe, so CDP messages (JSON, each ended by
// a NUL byte) flow over its fds 3 (commands in) and 4 (replies and events
// out).  No npm package, no port, no browser download.
//
//   node browser.js listing BASE_URL OUT_DIR
//   node browser.js media PAGE_URL OUT_DIR
//   node browser.js websocket PAGE_URL OUT_DIR   (test-47: the page echoes one
//        message over a WebSocket to its origin and writes "echo:..." into
//        #out; p's self-signed HTTPS certificate is accepted in this mode)
//
// Prints one "key<TAB>value" line per observation on stdout (the shell test
// asserts on them), "error<TAB>why" when something could not be observed,
// and screenshots (PNG) into OUT_DIR.  Chromium's PID is appended to
// $TT_PIDS_FILE ("PID chromium") so the test's trap stops it even if this
// script is killed; the script itself stops it on every exit path and gives
// up after $TT_BROWSER_DEADLINE seconds (default 45).
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const [mode, target, outDir] = process.argv.slice(2);
if (!['listing', 'media', 'websocket'].includes(mode) || !target || !outDir) {
    console.error('usage: browser.js listing|media|websocket URL OUT_DIR');
    process.exit(2);
}
const deadlineS = Number(process.env.TT_BROWSER_DEADLINE || 45);
const profile = fs.mkdtempSync(path.join(outDir, 'profile-'));

// The flags this closed network needs (no background connections that would
// be refused, no QUIC, no sandbox as root), plus autoplay without a gesture.
const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--mute-audio',
    '--autoplay-policy=no-user-gesture-required',
    '--user-data-dir=' + profile, '--remote-debugging-pipe', '--window-size=1000,800',
    ...(mode === 'websocket' ? ['--ignore-certificate-errors'] : []),
    'about:blank',
];
const chrome = spawn(process.env.TT_CHROMIUM || '/usr/bin/chromium', args, {
    stdio: ['ignore', 'ignore', fs.openSync(path.join(outDir, 'chromium.log'), 'a'), 'pipe', 'pipe'],
});
const toChrome = chrome.stdio[3];
const fromChrome = chrome.stdio[4];
toChrome.on('error', () => { /* Chromium gone: its exit is reported */ });
if (process.env.TT_PIDS_FILE && chrome.pid) {
    fs.appendFileSync(process.env.TT_PIDS_FILE, `${chrome.pid} chromium\n`);
}

function out(k, v) {
    process.stdout.write(`${k}\t${String(v).replace(/[\t\n]/g, ' ')}\n`);
}

// Stops Chromium: Browser.close first (a clean shutdown of all its
// processes), then SIGTERM after 3 s and SIGKILL after 6 s.  The profile is
// left in OUT_DIR (the test's work dir, wiped by the next run): Chromium's
// helper processes may still be writing to it when the browser has exited.
let stopping = false;
function stop(code) {
    if (stopping) return;
    stopping = true;
    const done = () => process.exit(code);
    if (chrome.exitCode !== null || chrome.signalCode !== null) return done();
    chrome.once('exit', done);
    try { toChrome.write(JSON.stringify({ id: 999999, method: 'Browser.close', params: {} }) + '\0'); } catch (e) { /* pipe gone */ }
    setTimeout(() => { try { chrome.kill('SIGTERM'); } catch (e) { /* gone */ } }, 3000);
    setTimeout(() => { try { chrome.kill('SIGKILL'); } catch (e) { /* gone */ } }, 6000);
}
setTimeout(() => { out('error', `browser.js gave up after ${deadlineS} s`); stop(1); }, deadlineS * 1000).unref();
chrome.on('exit', (c, s) => { if (!stopping) { out('error', `chromium exited (${c ?? s})`); stop(1); } });

// ---------------------------------------------------------------- CDP
let nextId = 1;
const pending = new Map();
const waiters = []; // {method, sessionId, resolve}
const listeners = []; // called with every event
let inbuf = Buffer.alloc(0);
fromChrome.on('data', (d) => {
    inbuf = Buffer.concat([inbuf, d]);
    let z;
    while ((z = inbuf.indexOf(0)) >= 0) {
        const msg = JSON.parse(inbuf.subarray(0, z).toString('utf8'));
        inbuf = inbuf.subarray(z + 1);
        if (msg.id && pending.has(msg.id)) {
            const { resolve, reject, method } = pending.get(msg.id);
            pending.delete(msg.id);
            if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
            else resolve(msg.result);
        } else if (msg.method) {
            for (const l of listeners) l(msg);
            for (let i = 0; i < waiters.length; i++) {
                const w = waiters[i];
                if (w.method === msg.method && w.sessionId === msg.sessionId) {
                    waiters.splice(i, 1);
                    w.resolve(msg.params);
                    break;
                }
            }
        }
    }
});
function send(method, params = {}, sessionId) {
    const id = nextId++;
    const m = { id, method, params };
    if (sessionId) m.sessionId = sessionId;
    toChrome.write(JSON.stringify(m) + '\0');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}
function once(method, sessionId, timeoutS = 20) {
    return new Promise((resolve, reject) => {
        const w = { method, sessionId, resolve };
        waiters.push(w);
        setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) { waiters.splice(i, 1); reject(new Error(`no ${method} within ${timeoutS} s`)); }
        }, timeoutS * 1000).unref();
    });
}

async function openPage() {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    await send('Page.enable', {}, sessionId);
    await send('Runtime.enable', {}, sessionId);
    return sessionId;
}

async function navigate(s, url) {
    const loaded = once('Page.loadEventFired', s);
    const r = await send('Page.navigate', { url }, s);
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await loaded;
}

// Evaluates an expression (awaiting a promise) in the page; returns its value.
async function evaluate(s, expression) {
    const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, s);
    if (r.exceptionDetails) {
        const d = r.exceptionDetails;
        throw new Error(`page threw: ${(d.exception && d.exception.description) || d.text}`);
    }
    return r.result.value;
}

async function screenshot(s, file) {
    const { data } = await send('Page.captureScreenshot', { format: 'png' }, s);
    fs.writeFileSync(path.join(outDir, file), Buffer.from(data, 'base64'));
}

// A real mouse click (pressed and released at the link's centre), as a
// person would, then the load of the page it leads to.
async function clickLink(s, text) {
    const box = await evaluate(s, `(() => {
        const a = [...document.querySelectorAll('a')].find((e) => e.textContent.trim() === ${JSON.stringify(text)});
        if (!a) return null;
        a.scrollIntoView();
        const r = a.getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })()`);
    if (!box) throw new Error(`no link with the text ${JSON.stringify(text)}`);
    const loaded = once('Page.loadEventFired', s);
    for (const type of ['mousePressed', 'mouseReleased']) {
        await send('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 }, s);
    }
    await loaded;
}

// ---------------------------------------------------------------- scenarios
async function listing(s) {
    await navigate(s, target);
    await screenshot(s, 'listing.png');
    const info = await evaluate(s, `(async () => {
        const links = [...document.querySelectorAll('a')].map((a) => ({ text: a.textContent.trim(), href: a.href }));
        const bad = [];
        for (const l of links) {
            if (!l.href.startsWith(location.origin + '/')) continue;
            const r = await fetch(l.href, { method: 'HEAD' });
            if (r.status !== 200) bad.push(l.text + ' -> ' + r.status);
        }
        return { n: links.length, texts: links.map((l) => l.text), bad,
                 body: document.body.innerText, scripts: document.querySelectorAll('script').length };
    })()`);
    out('links', info.n);
    out('link_texts', info.texts.join(' | '));
    out('links_not_200', info.bad.length ? info.bad.join(', ') : 'none');
    out('listing_shows_escaped_name', info.body.includes('tag <b>&amp;.txt') ? 'yes' : 'no');
    out('listing_scripts', info.scripts);

    const here = async () => evaluate(s, `({ path: decodeURIComponent(location.pathname),
        title: document.title, text: document.body ? document.body.innerText.slice(0, 200) : '' })`);
    await clickLink(s, 'sub/');
    let h = await here();
    out('click_sub_path', h.path);
    await clickLink(s, 'deeper/');
    h = await here();
    out('click_deeper_path', h.path);
    out('click_deeper_text', h.text.trim());
    await navigate(s, target);
    await clickLink(s, 'été/');
    h = await here();
    out('click_ete_path', h.path);
    out('click_ete_has_mkv', h.text.includes('vidéo ünïcode.mkv') ? 'yes' : 'no');
    await navigate(s, target);
    await clickLink(s, 'tag <b>&amp;.txt');
    h = await here();
    out('click_tag_path', h.path);
    out('click_tag_text', h.text.trim());
    await navigate(s, target);
    await clickLink(s, 'page.html');
    // app.js appends " (loaded)" to the title on DOMContentLoaded; style.css
    // sets the h1 colour #234 = rgb(34, 51, 68).
    h = await here();
    out('click_page_title', h.title);
    out('click_page_h1_color', await evaluate(s, `getComputedStyle(document.querySelector('h1')).color`));
    out('click_page_img_width', await evaluate(s, `(async () => { const i = document.querySelector('img');
        try { await i.decode(); } catch (e) { return 0; } return i.naturalWidth; })()`));
    await screenshot(s, 'page.png');
}

async function media(s) {
    // What the browser itself sent and got for the clip: its Range headers
    // and the statuses (Network domain events).
    const clip = [];
    await send('Network.enable', {}, s);
    listeners.push((m) => {
        if (m.sessionId !== s) return;
        if (m.method === 'Network.requestWillBeSent' && /clip\.mp4(\?.*)?$/.test(m.params.request.url)) {
            clip.push({ id: m.params.requestId, range: m.params.request.headers.Range || m.params.request.headers.range || 'none', status: 0 });
        } else if (m.method === 'Network.responseReceived') {
            const c = clip.find((x) => x.id === m.params.requestId);
            if (c) c.status = m.params.response.status;
        }
    });
    await navigate(s, target);
    const r = await evaluate(s, `(async () => {
        const res = {};
        const v = document.querySelector('video');
        const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
        const event = (el, name, ms) => new Promise((ok, no) => {
            el.addEventListener(name, ok, { once: true });
            el.addEventListener('error', () => no(new Error('video error ' + (el.error && el.error.code) + ' ' + (el.error && el.error.message))), { once: true });
            setTimeout(() => no(new Error('no ' + name + ' within ' + ms + ' ms')), ms);
        });
        res.can_play_mp4 = v.canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"') || 'no';
        try {
            if (v.error) throw new Error('video error ' + v.error.code + ' ' + v.error.message);
            if (v.readyState < 1) await event(v, 'loadedmetadata', 15000);
            res.duration = v.duration.toFixed(1);
            res.video_size = v.videoWidth + 'x' + v.videoHeight;
            if (v.paused) { try { await v.play(); } catch (e) { res.play_error = String(e); } }
            for (let i = 0; i < 150 && !(v.currentTime > 1.5); i++) await sleep(100);
            res.played_past_1_5s = v.currentTime > 1.5 ? 'yes' : 'no (currentTime ' + v.currentTime + ')';
            const seeked = event(v, 'seeked', 15000);
            v.currentTime = 12;
            await seeked;
            res.seeked_to = v.currentTime.toFixed(1);
            for (let i = 0; i < 150 && !(v.currentTime > 13); i++) await sleep(100);
            res.played_after_seek = v.currentTime > 13 ? 'yes' : 'no (currentTime ' + v.currentTime + ')';
            res.paused = v.paused ? 'yes' : 'no';
        } catch (e) {
            res.video_error = String(e.message || e);
        }
        res.video_error_code = v.error ? v.error.code : 'none';
        // A second player that only loaded the metadata, seeked far ahead
        // before playing: the browser asks for the bytes at the seek point.
        const w = document.getElementById('seeker');
        if (w) {
            try {
                if (w.readyState < 1) await event(w, 'loadedmetadata', 15000);
                const seeked = event(w, 'seeked', 15000);
                w.currentTime = 15;
                await seeked;
                await w.play();
                for (let i = 0; i < 150 && !(w.currentTime > 16); i++) await sleep(100);
                res.seeker_played_from_15s = w.currentTime > 16 ? 'yes' : 'no (currentTime ' + w.currentTime + ')';
            } catch (e) {
                res.seeker_error = String(e.message || e);
            }
        }
        for (const id of ['jpeg', 'png']) {
            const img = document.getElementById(id);
            try { await img.decode(); } catch (e) { /* naturalWidth stays 0 */ }
            res[id + '_size'] = img.naturalWidth + 'x' + img.naturalHeight;
        }
        return res;
    })()`);
    for (const [k, v] of Object.entries(r)) out(k, v);
    out('clip_requests', clip.map((c) => `${c.range}=>${c.status}`).join(', ') || 'none');
    await screenshot(s, 'media.png');
}

// The page's WebSocket echo: what #out says once it says anything but
// "waiting" (10 s at most).
async function websocket(s) {
    await navigate(s, target);
    const r = await evaluate(s, `(async () => {
        for (let i = 0; i < 100; i++) {
            const t = document.getElementById('out').textContent;
            if (t !== 'waiting') return t;
            await new Promise((r) => setTimeout(r, 100));
        }
        return 'timeout';
    })()`);
    out('ws_result', r);
}

(async () => {
    const s = await openPage();
    if (mode === 'listing') await listing(s);
    else if (mode === 'websocket') await websocket(s);
    else await media(s);
    out('done', 'yes');
    stop(0);
})().catch((e) => { out('error', e.message || e); stop(1); });
process.on('SIGTERM', () => stop(143));
