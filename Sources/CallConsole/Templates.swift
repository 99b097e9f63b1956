import Mustache

/// The console's pages as Mustache templates compiled into the binary (no files to install, no
/// external assets, no script: forms and links only). `{{x}}` is HTML-escaped; the one `{{{body}}}`
/// is the page already rendered.
enum Templates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in [("layout", layout), ("overview", overview), ("recordings", recordings), ("recording", recording), ("message", message), ("delete", delete), ("reconcile", reconcile)] {
            // The templates are literals of this file: a parse error is a programming error,
            // caught by every console test.
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// `template` rendered with `object`, inside the layout.
    static func page(_ template: String, title: String, _ object: [String: Any]) -> String {
        let body = library.render(object, withTemplate: template) ?? ""
        return library.render(["title": title, "body": body, "readOnly": object["readOnly"] ?? false], withTemplate: "layout") ?? body
    }

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · callrec</title>
        <link rel="stylesheet" href="/console/style.css">
        <link rel="icon" href="/console/icon.svg">
        </head>
        <body>
        <header><a class="brand" href="/console/">callrec</a> <a href="/console/">Overview</a> <a href="/console/recordings">Recordings</a> <a href="/console/reconcile">Reconcile</a>{{#readOnly}} <span class="tag">read-only</span>{{/readOnly}}</header>
        <main>
        {{{body}}}
        </main>
        </body>
        </html>

        """

    static let overview = """
        <h1>Overview</h1>
        <p class="muted">As of {{now}} (the store's clock){{#counted}}: {{counted}}{{/counted}}.</p>
        <section class="grid">
        <div>
        <h2>Recordings</h2>
        <table>{{#recordings}}<tr><td><a href="/console/recordings?state={{state}}">{{state}}</a></td><td class="n">{{count}}</td></tr>{{/recordings}}</table>
        </div>
        <div>
        <h2>Jobs</h2>
        <table>{{#jobs}}<tr><td>{{state}}</td><td class="n">{{count}}</td></tr>{{/jobs}}
        <tr><td>due now</td><td class="n">{{due}}</td></tr>
        <tr><td>oldest waiting</td><td class="n">{{oldestDue}}</td></tr></table>
        </div>
        <div>
        <h2>Throughput</h2>
        <table><tr><td>uploaded, last hour</td><td class="n">{{uploadedHour}}</td></tr>
        <tr><td>uploaded, last day</td><td class="n">{{uploadedDay}}</td></tr></table>
        </div>
        <div>
        <h2>Pipedrive tokens today</h2>
        {{^tokens}}<p class="muted">No Pipedrive request recorded yet.</p>{{/tokens}}
        {{#tokens}}<table class="tokens"><tr><td>spent</td><td class="n">{{spent}}</td></tr>
        <tr><td>left</td><td class="n">{{left}}</td></tr>
        <tr><td>daily budget</td><td class="n">{{budget}}</td></tr>
        <tr><td>resets at</td><td class="n">{{resets}} UTC</td></tr>
        <tr><td>resets in</td><td class="n">{{resetsIn}}</td></tr></table>
        <p class="muted">Every process's spend as recorded in the ledger (last at {{recorded}}).</p>{{/tokens}}
        </div>
        <div>
        <h2>Sources</h2>
        {{^has_sources}}<p class="muted">Nothing delivered yet.</p>{{/has_sources}}
        {{#has_sources}}<table>{{#sources}}<tr><td>{{source}}</td><td>{{seen}}</td><td class="muted">{{ago}} ago</td></tr>{{/sources}}</table>{{/has_sources}}
        </div>
        <div>
        <h2>Failures by code</h2>
        {{^failures}}<p class="muted">None.</p>{{/failures}}
        {{#has_failures}}<table>{{#failures}}<tr><td><a href="/console/recordings?code={{code}}">{{code}}</a></td><td class="n">{{count}}</td></tr>{{/failures}}</table>{{/has_failures}}
        </div>
        </section>

        """

    static let recordings = """
        <h1>Recordings</h1>
        <form class="filters" method="get" action="/console/recordings">
        <label>State <select name="state"><option value="">any</option>{{#states}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/states}}</select></label>
        <label>Error code <input name="code" value="{{code}}" size="14"></label>
        <label>Warning code <input name="warning" value="{{warning}}" size="14"></label>
        <label>Source path starts with <input name="source" value="{{source}}" size="20"></label>
        <label>From <input name="from" type="date" value="{{from}}"></label>
        <label>To <input name="to" type="date" value="{{to}}"></label>
        <label>Phone <input name="phone" value="{{phone}}" size="14"></label>
        <label>Call log <input name="call_log" value="{{callLog}}" size="10"></label>
        <button>Filter</button> <a href="/console/recordings">clear</a>
        </form>
        {{#problem}}<p class="error">{{problem}}</p>{{/problem}}
        <table class="list">
        <thead><tr><th>Registered (UTC)</th><th>State</th><th>Code</th><th>Source</th><th class="n">Seconds</th><th class="n">Parts</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td><a href="/console/recordings/{{key}}">{{created}}</a></td><td><span class="state {{state}}">{{state}}</span></td><td>{{code}}</td><td class="path">{{path}}</td><td class="n">{{seconds}}</td><td class="n">{{parts}}</td></tr>
        {{/rows}}
        </tbody>
        </table>
        {{^rows}}<p class="muted">No recording matches.</p>{{/rows}}
        <p>{{#first}}<a href="{{first}}">First page</a> {{/first}}{{#next}}<a rel="next" href="{{next}}">Next page</a>{{/next}}</p>

        """

    static let recording = """
        <h1>Recording</h1>
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        <table class="facts">
        <tr><th>Key</th><td><code>{{key}}</code></td></tr>
        <tr><th>Source file</th><td class="path">{{path}}</td></tr>
        <tr><th>State</th><td><span class="state {{state}}">{{state}}</span></td></tr>
        {{#code}}<tr><th>Error</th><td><strong>{{code}}</strong> {{message}}</td></tr>{{/code}}
        <tr><th>Seconds</th><td>{{seconds}}</td></tr>
        <tr><th>Registered</th><td>{{created}}</td></tr>
        <tr><th>Last change</th><td>{{updated}}</td></tr>
        </table>

        {{#waveform}}<h2>Waveform</h2>
        <svg class="wave" viewBox="0 0 {{width}} 100" preserveAspectRatio="none" role="img" aria-label="loudness over {{duration}} s ({{points}} points)"><line x1="0" y1="50" x2="{{width}}" y2="50" stroke="#bbb" stroke-width="0.5" vector-effect="non-scaling-stroke"/><path d="{{path}}" stroke="#2a6fb0" stroke-width="1" vector-effect="non-scaling-stroke"/></svg>
        <p class="muted">The whole call ({{duration}} s), loudest 20 ms of each slice; silence is the flat line.</p>{{/waveform}}

        {{#has_warningCodes}}<h2>Checks</h2>
        <ul class="warnings">{{#warningCodes}}<li><strong>{{.}}</strong></li>{{/warningCodes}}</ul>
        <p class="muted">The transcode's report (its messages and measurements) left with the spool.</p>{{/has_warningCodes}}

        {{#has_checks}}<h2>Checks</h2>
        {{^has_warnings}}<p>No warning.</p>{{/has_warnings}}
        {{#has_warnings}}<ul class="warnings">{{#warnings}}<li><strong>{{code}}</strong> {{message}}</li>{{/warnings}}</ul>{{/has_warnings}}
        <table>{{#stats}}<tr><th>{{name}}</th><td>{{value}}</td></tr>{{/stats}}</table>{{/has_checks}}

        <h2>Parts and call logs</h2>
        {{^parts}}<p class="muted">Not transcoded yet.</p>{{/parts}}
        {{#has_parts}}<table class="list"><thead><tr><th>#</th><th>State</th><th>Call log</th><th class="n">Seconds</th><th class="n">Bytes</th><th>Audio</th></tr></thead><tbody>
        {{#parts}}<tr><td>{{index}}</td><td>{{state}}</td><td>{{callLog}}{{#origin}} <span class="muted">({{origin}})</span>{{/origin}}</td><td class="n">{{seconds}}</td><td class="n">{{bytes}}</td><td><audio controls preload="metadata" src="{{audio}}"></audio></td></tr>
        {{/parts}}</tbody></table>{{/has_parts}}

        {{#has_records}}<h2>In Pipedrive</h2>
        <p>The call logs are linked to: {{#records}}<span class="record">{{#link}}<a href="{{link}}" rel="noreferrer">{{kind}} {{id}}</a>{{/link}}{{^link}}{{kind}} {{id}}{{/link}}</span> {{/records}}</p>
        {{#noWebURL}}<p class="muted">No links: the Pipedrive API URL names no company domain (set PIPEDRIVE_WEB_URL to https://COMPANY.pipedrive.com).</p>{{/noWebURL}}{{/has_records}}

        {{#match}}<h2>Match</h2>
        <table class="facts"><tr><th>Linked</th><td>{{target}}</td></tr><tr><th>Why</th><td>{{detail}}</td></tr><tr><th>Decided</th><td>{{at}} by {{actor}}</td></tr></table>{{/match}}

        <h2>Jobs</h2>
        {{^jobs}}<p class="muted">None.</p>{{/jobs}}
        {{#has_jobs}}<table class="list"><thead><tr><th>Id</th><th>Kind</th><th>State</th><th>Attempt</th><th>Run at</th><th>Last error</th><th></th></tr></thead><tbody>
        {{#jobs}}<tr><td>{{id}}</td><td>{{kind}}</td><td>{{state}}</td><td>{{attempt}}/{{maxAttempts}}</td><td>{{runAt}}</td><td>{{lastError}}</td><td class="actions">
        {{#retry}}<form method="post" action="/console/jobs/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="{{back}}"><button>Retry</button></form>{{/retry}}
        {{#cancel}}<form method="post" action="/console/jobs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="back" value="{{back}}"><button>Cancel</button></form>{{/cancel}}
        </td></tr>
        {{/jobs}}</tbody></table>{{/has_jobs}}

        {{#has_refs}}<h2>Provider references</h2>
        <table class="list">{{#refs}}<tr><td>{{provider}}</td><td><code>{{reference}}</code></td><td>{{state}}</td></tr>{{/refs}}</table>{{/has_refs}}

        {{#deletable}}<p><a class="danger" href="/console/recordings/{{key}}/delete">Delete everywhere…</a></p>{{/deletable}}

        {{#metadata}}<h2>Sidecar</h2><pre>{{metadata}}</pre>{{/metadata}}

        <h2>Audit trail</h2>
        {{^audit}}<p class="muted">Nothing recorded.</p>{{/audit}}
        {{#has_audit}}<table class="list"><thead><tr><th>At (UTC)</th><th>Action</th><th>Target</th><th>HTTP</th><th>Detail</th><th>Who</th></tr></thead><tbody>
        {{#audit}}<tr><td>{{at}}</td><td>{{action}}</td><td>{{target}}</td><td>{{http}}</td><td>{{detail}}</td><td>{{actor}}</td></tr>
        {{/audit}}</tbody></table>{{/has_audit}}

        """

    static let delete = """
        <h1>Delete a recording everywhere</h1>
        <p class="path">{{path}}</p>
        {{^deletable}}<p class="error">It is {{state}}: there is nothing to delete now.</p>{{/deletable}}
        {{#deletable}}
        <p>This goes, in this order, and cannot be undone (a tombstone keeps the same bytes from coming back):</p>
        <table class="list"><thead><tr><th>What</th><th>Deletion</th></tr></thead><tbody>
        {{#steps}}<tr><td><code>{{target}}</code></td><td>{{#goes}}<strong>deleted</strong>{{/goes}}{{^goes}}{{state}}: {{detail}}{{/goes}}</td></tr>
        {{/steps}}</tbody></table>
        <form method="post" action="/console/recordings/{{key}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="confirm" value="yes"><button class="danger">Delete everywhere</button></form>
        {{/deletable}}
        <p><a href="/console/recordings/{{key}}">Back to the recording</a></p>

        """

    static let reconcile = """
        <h1>Reconcile</h1>
        <p>A pass lists Pipedrive's call logs, confirms each one the ledger knows but the listing lacks (only a 404 or 410 is evidence), and plans the deletion of their recordings everywhere. Planning deletes nothing; applying deletes exactly the plan shown, or nothing if a new pass finds another one.</p>
        {{#notConfigured}}<p class="error">PIPEDRIVE_API_TOKEN is not set where the console runs: reconcile cannot run here.</p>{{/notConfigured}}
        {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
        {{#report}}
        {{#abort}}<p class="error"><strong>{{code}}</strong> {{message}}</p>{{/abort}}
        {{#warnings}}<p class="muted">{{.}}</p>{{/warnings}}
        {{#has_lines}}<table class="list"><thead><tr><th>Recording</th><th>Action</th><th>Goes</th><th>Findings</th><th>Result</th></tr></thead><tbody>
        {{#lines}}<tr><td><a href="/console/recordings/{{key}}">{{path}}</a></td><td>{{action}}</td><td>{{targets}}</td><td>{{findings}}</td><td>{{result}}</td></tr>
        {{/lines}}</tbody></table>{{/has_lines}}
        {{^has_lines}}<p>Nothing to report: every call log the ledger knows is in Pipedrive.</p>{{/has_lines}}
        {{/report}}
        {{#planID}}<form method="post" action="/console/reconcile/apply"><input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="plan" value="{{planID}}"><button class="danger">Apply this plan</button></form>{{/planID}}
        {{#canRun}}<form method="post" action="/console/reconcile/plan"><input type="hidden" name="csrf" value="{{csrf}}"><label>At most <input name="max_delete" type="number" min="0" size="6"> recordings deleted (empty: the default cap, 20 or 5 % of the uploaded, whichever is smaller)</label> <button>Plan a reconcile pass</button></form>{{/canRun}}

        """

    static let message = """
        <h1>{{heading}}</h1>
        <p>{{text}}</p>
        <p><a href="/console/">Back to the overview</a></p>

        """

    /// The page icon (a browser asks for one; without it every page logs a 404).
    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#243447"/>\
        <path d="M3 8h2M6 5v6M9 3v10M12 6v4" stroke="#fff" stroke-width="1.5"/></svg>
        """

    /// The one stylesheet (`/console/style.css`): the pages carry no inline style, so the
    /// Content-Security-Policy can forbid every inline thing.
    static let css = """
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
        header { background: #243447; padding: .6em 1em; }
        header a { color: #fff; margin-right: 1em; text-decoration: none; }
        header .brand { font-weight: bold; }
        main { padding: 1em; }
        table { border-collapse: collapse; margin-bottom: 1em; }
        td, th { padding: .25em .6em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
        td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
        .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(16em, 1fr)); gap: 1em; }
        .muted { color: #777; }
        .path { font-family: monospace; word-break: break-all; }
        .state { padding: 0 .4em; border-radius: 3px; background: #eee; }
        .state.failed { background: #f8d7da; } .state.uploaded { background: #d4edda; } .state.pending, .state.transcoded { background: #fff3cd; }
        .tag { background: #ffc107; color: #000; padding: 0 .4em; border-radius: 3px; }
        .error { color: #a00; } .notice { background: #e7f1ff; padding: .5em; }
        .filters label { margin-right: .8em; white-space: nowrap; }
        .actions form { display: inline; }
        .danger { color: #a00; } button.danger { color: #fff; background: #b00; border: 0; padding: .4em .8em; }
        svg.wave { width: 100%; height: 120px; background: #fafafa; border: 1px solid #ddd; }
        pre { background: #f6f6f6; padding: .5em; overflow: auto; max-height: 20em; }

        """
}
