# attnpanel.gp: several attention maps side by side, one row per map (a model at a length),
# one column per head of one layer; colours and marks as plots/attnmap.gp (log10 weight, white
# exactly zero, answers as red circles). Input: `lcgbench attnmap` data files.
#   gnuplot -e "files='a.dat b.dat'; labels='softmax 1x|softmax 64x'; out='panel.png'" plots/attnpanel.gp
# layers and heads default to the first file's (its second comment line); layer to the last.
if (!exists("files") || !exists("labels") || !exists("out")) { print "attnpanel.gp: set files, labels, out (see the header)"; exit status 2 }
if (!exists("title")) title = ""
nf = words(files)
if (!exists("layers")) layers = int(system(sprintf("sed -n 2p '%s' | awk '{print $5}'", word(files, 1))))
if (!exists("heads")) heads = int(system(sprintf("sed -n 2p '%s' | awk '{print $8}'", word(files, 1))))
if (!exists("layer")) layer = layers - 1
label_at(s, i) = i == 1 ? (strstrt(s, "|") ? s[1:strstrt(s, "|") - 1] : s) : label_at(s[strstrt(s, "|") + 1:], i - 1)
set terminal pngcairo size 170 * heads + 80, 170 * nf + 60 font "Sans,8"
set output out
set multiplot layout nf,heads title title
set palette defined (-6 "#f7fbff", -4 "#9ecae1", -2 "#3182bd", -1 "#fd8d3c", 0 "#7f0000")
set cbrange [-6:0]
unset colorbox
set tics out nomirror font ",6"
set autoscale yfix
set yrange [*:*] reverse
set key off
do for [f=1:nf] {
  d = word(files, f)
  stats d index 0 using 5 nooutput
  n = STATS_max + 1
  st = 10**floor(log10(n)); st = n / st < 2 ? st / 2 : st
  set xtics 0, st
  set xrange [-0.5:n - 0.5]
  do for [hh=0:heads-1] {
    if (hh == 0) { set ylabel label_at(labels, f) font ",8" } else { unset ylabel }
    if (f == 1) { set title sprintf("layer %d, head %d", layer, hh) font ",8" } else { unset title }
    plot d index (layer * heads + hh) using 5:3:($6 > 0 ? log10($6) : NaN) with image, \
         d index (layers * heads) using 3:($1 >= 0 ? $1 : NaN) with points pt 6 ps 0.6 lc rgb "red"
  }
}
unset multiplot
set output
