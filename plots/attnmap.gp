# attnmap.gp: one sample's attention, a panel per (layer, head): x the key position, y the query
# row (the last supervised positions, or every position), colour log10 of the weight (white:
# exactly zero, what entmax gives and softmax never does), the task's answer positions as open
# red circles. Input: a `lcgbench attnmap` data file (harness/attnmap.h: blocks per layer x
# head, then the answers). `lcgbench attnmap --out F.png` runs it; by hand:
#   gnuplot -e "data='m.dat'; out='m.png'; term='png'; layers=2; heads=8; n=1537; title='recall'" plots/attnmap.gp
if (!exists("data") || !exists("out") || !exists("layers") || !exists("heads")) { print "attnmap.gp: set data, out, layers, heads (see the header)"; exit status 2 }
if (!exists("term")) term = "png"
if (!exists("title")) title = ""
if (!exists("n")) n = 0
w = heads <= 4 ? 360 * heads : 220 * heads
h = 60 + 230 * layers
if (term eq "svg") { set terminal svg size w,h dynamic font "Sans,11" } else { set terminal pngcairo size w,h font "Sans,9" }
set output out
set multiplot layout layers,heads title title
set palette defined (-6 "#f7fbff", -4 "#9ecae1", -2 "#3182bd", -1 "#fd8d3c", 0 "#7f0000")
set cbrange [-6:0]
set cbtics ("1e-6" -6, "1e-4" -4, "0.01" -2, "0.1" -1, "1" 0)
unset colorbox
set xtics font ",7"
set ytics font ",7"
if (n > 0) { set xrange [-0.5:n-0.5]; st = 10**floor(log10(n)); st = n / st < 2 ? st / 2 : st; set xtics 0, st }
set autoscale xfix
set autoscale yfix
set yrange [*:*] reverse
set tics out nomirror
set key off
do for [l=0:layers-1] {
  do for [hh=0:heads-1] {
    set title sprintf("layer %d, head %d", l, hh) font ",9"
    if (hh == heads - 1) { set colorbox } else { unset colorbox }
    if (hh == 0) { set ylabel "query row" } else { unset ylabel }
    if (l == layers - 1) { set xlabel "key position" } else { unset xlabel }
    plot data index (l * heads + hh) using 5:3:($6 > 0 ? log10($6) : NaN) with image, \
         data index (layers * heads) using 3:($1 >= 0 ? $1 : NaN) with points pt 6 ps 0.8 lc rgb "red"
  }
}
unset multiplot
set output
