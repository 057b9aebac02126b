# diagnostics.gp: the attention diagnostics vs evaluation length for one task, one line per
# method (means over seeds, query rows of the supervised positions, heads and layers): entropy,
# support size (non-zero weights per row) and maximum weight. Dispersion shows as softmax's
# entropy growing and its maximum weight decaying with length; entmax's support stays bounded.
# Input: a `lcgbench table --format dat` file. Writes <out>.png and <out>.svg.
#   gnuplot -e "data='results/mini/plots/copy.dat'; out='results/mini/figures/copy-attn'; task='copy'" plots/diagnostics.gp
if (!exists("data") || !exists("out")) { print "diagnostics.gp: set data and out (see the header)"; exit status 2 }
if (!exists("task")) task = ""
stats data using 1 nooutput
nb = STATS_blocks
set logscale x 2
set format x "%g×"
set grid
set style data linespoints
set pointsize 0.7
do for [t in "pngcairo svg"] {
  if (t eq "svg") { set terminal svg size 1200,420 dynamic font "Sans,12"; set output out.".svg" } \
  else { set terminal pngcairo size 1200,420 font "Sans,10"; set output out.".png" }
  set multiplot layout 1,3 title sprintf("%s: attention diagnostics vs length", task)
  set xlabel "length / training length"
  set key top left noenhanced
  set logscale y 2
  set format y "%g"
  set title "support size (keys with weight > 0)"
  plot for [i=0:nb-1] data index i using 1:9 title columnheader(1) lw 2
  unset logscale y
  set title "entropy (nats)"
  set key off
  plot for [i=0:nb-1] data index i using 1:8 title columnheader(1) lw 2
  set title "maximum weight"
  set yrange [0:1.02]
  plot for [i=0:nb-1] data index i using 1:10 title columnheader(1) lw 2
  set autoscale y
  unset multiplot
  set output
}
