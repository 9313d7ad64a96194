// The catalogue's table, made to filter as you type and sort by column with Grid.js
// (vendored in assets/vendor/gridjs: the site loads nothing from another host).
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("optreg-catalogue");
  if (!table || !window.gridjs) {
    return;
  }
  var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
    return th.textContent.trim();
  });
  var data = Array.prototype.map.call(table.tBodies[0].rows, function (tr) {
    var link = tr.cells[0].querySelector("a");
    var cells = Array.prototype.map.call(tr.cells, function (td) {
      return td.textContent.trim();
    });
    return [link ? link.getAttribute("href") : ""].concat(cells);
  });
  var columns = [{ name: "href", hidden: true }].concat(
    heads.map(function (head, i) {
      var widths = ["16%", "8%", "28%", "14%", "7%", "13%", "9%"];
      var column = { name: head, width: widths[i] };
      if (i === 0) {
        column.formatter = function (cell, row) {
          return gridjs.html('<a href="' + row.cells[0].data + '">' + cell + "</a>");
        };
      }
      return column;
    })
  );
  var holder = document.createElement("div");
  holder.id = "optreg-catalogue-grid";
  table.parentNode.insertBefore(holder, table);
  new gridjs.Grid({
    columns: columns,
    data: data,
    search: true,
    sort: true,
    fixedHeader: true,
    autoWidth: false,
    width: "100%",
    height: "70vh",
    language: { search: { placeholder: "Filter: a name, provider, capability (fsdp2)..." } },
  }).render(holder);
  table.hidden = true;
});
