# accuracy.gp: accuracy vs evaluation length (log2 axis) for one task, one line per method,
# error bars spanning the seeds (min..max) around their mean; beyond eight methods the colours
# repeat, dashed. Input: a data file written by
# `lcgbench table --format dat` (a block per method). Writes <out>.png and <out>.svg.
#   gnuplot -e "data='results/mini/plots/copy.dat'; out='results/mini/figures/copy'; task='copy'" plots/accuracy.gp
if (!exists("data") || !exists("out")) { print "accuracy.gp: set data and out (see the header)"; exit status 2 }
if (!exists("task")) task = ""
if (!exists("metric")) metric = "exact match (%)"
stats data using 1 nooutput
nb = STATS_blocks
set logscale x 2
set format x "%g×"
set xlabel "evaluation length / training length"
set ylabel metric
set yrange [-2:102]
set grid
set key outside right top noenhanced
set title sprintf("%s: accuracy vs length", task)
set style data yerrorlines
set pointsize 0.8
do for [t in "pngcairo svg"] {
  if (t eq "svg") { set terminal svg size 900,480 dynamic font "Sans,12"; set output out.".svg" } \
  else { set terminal pngcairo size 900,480 font "Sans,10"; set output out.".png" }
  plot for [i=0:nb-1] data index i using 1:3:5:6 title columnheader(1) lw 2 dt 1 + i / 8
  set output
}
