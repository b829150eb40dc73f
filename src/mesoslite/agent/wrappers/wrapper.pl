my ($f, $tag, $cg) = splice(@ARGV, 0, 3);
for my $p (split / /, $cg) { if (open(my $h, ">>", $p)) { print $h "$$\n"; close $h } }
my @sigs = qw(TERM INT HUP);
$SIG{$_} = "IGNORE" for @sigs;
my $pid = fork();
if (!defined $pid) { print STDERR "mesoslite: cannot fork: $!\n"; exit 127 }
if ($pid == 0) {
  $SIG{$_} = "DEFAULT" for @sigs;
  exec { $ARGV[0] } @ARGV;
  print STDERR "mesoslite: cannot execute $ARGV[0]: $!\n"; exit 127;
}
waitpid($pid, 0);
my $s = $?; my $sig = $s & 127; my $code = $sig ? -$sig : $s >> 8;
if (length $f && open(my $h, ">>", $f)) { syswrite($h, "$tag $code\n"); close $h }
if ($sig) { $SIG{$_} = "DEFAULT" for @sigs; kill $sig, $$; exit(128 + $sig) }
exit($s >> 8);
