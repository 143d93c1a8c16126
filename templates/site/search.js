// Search over paper titles: fetches search/index.json and its shards once, then filters in memory.
(function () {
  var input = document.getElementById("search-input"), box = document.getElementById("search-results");
  if (!input || !box) return;
  var root = input.getAttribute("data-root") || "", papers = null;
  function load() {
    if (!papers) papers = fetch(root + "search/index.json").then(function (r) { return r.json(); }).then(function (names) {
      return Promise.all(names.map(function (n) { return fetch(root + "search/" + n).then(function (r) { return r.json(); }); }));
    }).then(function (shards) { return [].concat.apply([], shards).map(function (p) { return [p[0], p[0].toLowerCase(), p[1], p[2]]; }); });
    return papers;
  }
  function note(text) { var p = document.createElement("p"); p.textContent = text; return p; }
  function show(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { box.hidden = true; return; }
    load().then(function (all) {
      var hits = all.filter(function (p) { return words.every(function (w) { return p[1].indexOf(w) >= 0; }); });
      var list = document.createElement("ol");
      hits.slice(0, 50).forEach(function (p) {
        var li = document.createElement("li"), a = document.createElement("a"), t = document.createElement("time");
        a.href = root + p[2].slice(0, 4) + "/" + p[2].slice(5, 7) + "/" + p[2] + ".html#" + p[3];
        a.textContent = p[0]; t.textContent = p[2]; li.append(a, t); list.append(li);
      });
      box.replaceChildren(note(hits.length + " title" + (hits.length === 1 ? "" : "s") + " match" + (hits.length > 50 ? " (first 50 shown)" : "")), list);
      box.hidden = false;
    }, function () {
      box.replaceChildren(note("Search needs the site served over HTTP (e.g. python3 -m http.server in the site folder)."));
      box.hidden = false;
    });
  }
  input.addEventListener("input", function () { show(input.value); });
  var q = new URLSearchParams(location.search).get("q");
  if (q) { input.value = q; show(q); }
})();
